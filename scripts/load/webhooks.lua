-- wrk: POSTs the signed webhooks of gen_webhooks.py, each once.
--   wrk -t2 -c64 -d10s -s scripts/load/webhooks.lua http://127.0.0.1:3000 -- /tmp/webhooks.tsv
-- Thread i of n sends lines i, i+n, i+2n...; when a thread has sent all of
-- its lines it starts over (duplicates from then on: make the file larger
-- than rate x duration). Counts non-200 answers.
local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local path = args[1] or "/tmp/webhooks.tsv"
  reqs = {}
  local i = 0
  local nthreads = tonumber(os.getenv("WRK_THREADS") or "2")
  for line in io.lines(path) do
    if i % nthreads == id then
      local tab = line:find("\t", 1, true)
      local sig, body = line:sub(1, tab - 1), line:sub(tab + 1)
      reqs[#reqs + 1] = wrk.format("POST", "/webhooks/whatsapp", {
        ["Content-Type"] = "application/json",
        ["X-Hub-Signature-256"] = sig,
      }, body)
    end
    i = i + 1
  end
  idx = 0
  non200 = 0
end

function request()
  idx = idx + 1
  if idx > #reqs then idx = 1 end
  return reqs[idx]
end

function response(status, headers, body)
  if status ~= 200 then non200 = non200 + 1 end
end

function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + (t:get("non200") or 0) end
  io.write(string.format("non-200 answers: %d\n", bad))
  for _, p in ipairs({50, 90, 99, 99.9}) do
    io.write(string.format("accept latency p%g: %.2f ms\n", p, latency:percentile(p) / 1000))
  end
end
