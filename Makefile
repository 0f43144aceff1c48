# SAM's makefile builder (template.yaml: each function's Metadata BuildMethod
# makefile). `sam build` runs `make build-<LogicalId>` once per function, with
# ARTIFACTS_DIR set to that function's .aws-sam/build/<LogicalId>. Every target
# runs scripts/build-lambdas, which builds ALL the function binaries in one
# cargo-lambda invocation (arm64, the `lambda` profile; CHARLA_LAMBDA_PROFILE
# and CARGO_TARGET_DIR pass through): the first target builds, the others find
# cargo's output up to date. Each then copies its own binary as `bootstrap`.
#
# samconfig.toml sets build_in_source, so that SAM runs this in the repository
# instead of copying the repository (target/ included) to a scratch directory
# per function. The paths below are the Makefile's own directory's, so a build
# in a scratch copy still builds here, with this target/. `2>&1`: SAM prints
# make's stdout as it comes but keeps its stderr (cargo's progress) until the end.

ROOT := $(dir $(abspath $(lastword $(MAKEFILE_LIST))))
BUILD_LAMBDAS := bash $(ROOT)scripts/build-lambdas --no-sizes --copy

# <LogicalId> in template.yaml -> the binary it deploys.
build-Ingestion:
	$(BUILD_LAMBDAS) ingestion "$(ARTIFACTS_DIR)" 2>&1
build-TextAi:
	$(BUILD_LAMBDAS) text-ai "$(ARTIFACTS_DIR)" 2>&1
build-Escalation:
	$(BUILD_LAMBDAS) escalation "$(ARTIFACTS_DIR)" 2>&1
build-ChatwootWebhook:
	$(BUILD_LAMBDAS) chatwoot-webhook "$(ARTIFACTS_DIR)" 2>&1
build-CallTrigger:
	$(BUILD_LAMBDAS) call-trigger "$(ARTIFACTS_DIR)" 2>&1
build-Voice:
	$(BUILD_LAMBDAS) voice "$(ARTIFACTS_DIR)" 2>&1
build-Authorizer:
	$(BUILD_LAMBDAS) authorizer "$(ARTIFACTS_DIR)" 2>&1
build-Admin:
	$(BUILD_LAMBDAS) admin "$(ARTIFACTS_DIR)" 2>&1
build-Media:
	$(BUILD_LAMBDAS) media "$(ARTIFACTS_DIR)" 2>&1
build-Campaigns:
	$(BUILD_LAMBDAS) campaigns "$(ARTIFACTS_DIR)" 2>&1
build-CampaignDispatcher:
	$(BUILD_LAMBDAS) campaign-dispatcher "$(ARTIFACTS_DIR)" 2>&1

.PHONY: build-Ingestion build-TextAi build-Escalation build-ChatwootWebhook \
	build-CallTrigger build-Voice build-Authorizer build-Admin build-Media \
	build-Campaigns build-CampaignDispatcher
