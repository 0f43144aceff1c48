//! The knowledge base for one machine: a folder of Markdown files, indexed
//! in RAM with tantivy when the process starts.
//!
//! Each file is cut into passages at its headings, and a long section into
//! paragraphs of at most [`MAX_PASSAGE_CHARS`], so that a search returns a
//! piece the model can quote rather than a whole file. A passage starts with
//! the headings above it (`Envíos > Costos de envío`), so it stands on its
//! own and a file's title counts for all of its sections. Its source is the
//! file's path in the folder and its heading: `envios.md#Costos de envío`.
//!
//! Users write Spanish, Portuguese and English, often without accents: text is
//! lowercased, stop words of the three languages are dropped, and accents are
//! folded (`envío` and `envio` are one term). Each passage is indexed four
//! times: the words as they are, and stemmed with the Spanish, Portuguese and
//! English stemmers (`envíos` finds `envío`, `ubicados` finds `ubicación`). A
//! query matches any of them; BM25 adds the scores, so an exact word counts
//! more than a shared stem.
//!
//! The query is built from the user's words, never parsed as query syntax, so
//! no text makes a search fail.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use async_trait::async_trait;
use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, Value, STORED,
};
use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer,
    StopWordFilter, TextAnalyzer, TokenStream,
};
use tantivy::{doc, Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

use domain::error::{Error, Result};
use domain::ports::KnowledgeBase;
use domain::Passage;

const SERVICE: &str = "knowledge";

/// Longest passage, in characters: a few paragraphs, small enough that
/// several fit in a prompt. A section longer than this is cut at paragraph
/// (then line, then word) boundaries; each piece starts with the headings
/// above it.
pub const MAX_PASSAGE_CHARS: usize = 1200;

/// The most results one search returns, whatever the caller asks for.
const MAX_LIMIT: usize = 50;

/// Words of a query looked up, per field; the rest of a very long message is
/// ignored (it would only slow the search down).
const MAX_QUERY_TERMS: usize = 64;

/// Longer tokens are dropped: they are hashes, URLs or noise, not words.
const MAX_TOKEN_CHARS: usize = 40;

/// The indexing arena of the one writer thread (tantivy's minimum). It is
/// freed once the index is built.
const WRITER_MEMORY: usize = 15_000_000;

/// How the passages' text is indexed: one field per analyzer.
const ANALYZERS: [(&str, Option<Language>); 4] = [
    ("kb_plain", None),
    ("kb_es", Some(Language::Spanish)),
    ("kb_pt", Some(Language::Portuguese)),
    ("kb_en", Some(Language::English)),
];

/// Markdown files under a folder, searchable by words.
#[derive(Clone)]
pub struct LocalKnowledgeBase {
    dir: PathBuf,
    reader: IndexReader,
    /// The stored passage text and source.
    text: Field,
    source: Field,
    /// Indexed copies of the text, with the analyzer of each.
    indexed: Vec<(Field, TextAnalyzer)>,
    passages: usize,
}

impl fmt::Debug for LocalKnowledgeBase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalKnowledgeBase")
            .field("dir", &self.dir)
            .field("passages", &self.passages)
            .finish()
    }
}

impl LocalKnowledgeBase {
    /// Indexes every `*.md` file under `dir`, its subfolders included
    /// (hidden ones, like `.git`, are skipped). An empty folder is an empty
    /// knowledge base; a missing one is a configuration error.
    pub fn open(dir: &Path) -> Result<Self> {
        let started = Instant::now();
        let meta = std::fs::metadata(dir)
            .map_err(|e| Error::Config(format!("knowledge folder {}: {e}", dir.display())))?;
        if !meta.is_dir() {
            return Err(Error::Config(format!(
                "knowledge folder {} is not a folder",
                dir.display()
            )));
        }
        let mut files = Vec::new();
        markdown_files(dir, &mut files)?;
        files.sort();

        let mut passages = Vec::new();
        for path in &files {
            let bytes = std::fs::read(path)
                .map_err(|e| Error::Config(format!("knowledge file {}: {e}", path.display())))?;
            let text = match String::from_utf8(bytes) {
                Ok(text) => text,
                Err(e) => {
                    tracing::warn!(file = %path.display(), "knowledge file is not UTF-8; invalid bytes replaced");
                    String::from_utf8_lossy(e.as_bytes()).into_owned()
                }
            };
            let name = relative_name(dir, path);
            passages.extend(split_markdown(&name, &text));
        }

        let kb = Self::index(dir, &passages)?;
        tracing::info!(
            dir = %dir.display(),
            files = files.len(),
            passages = passages.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "knowledge base indexed"
        );
        Ok(kb)
    }

    fn index(dir: &Path, passages: &[Chunk]) -> Result<Self> {
        let mut schema = Schema::builder();
        let text = schema.add_text_field("text", STORED);
        let source = schema.add_text_field("source", STORED);
        let mut indexed = Vec::with_capacity(ANALYZERS.len());
        for (name, language) in ANALYZERS {
            let options = TextOptions::default().set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer(name)
                    // BM25 needs the frequencies; nothing here needs positions.
                    .set_index_option(IndexRecordOption::WithFreqs),
            );
            indexed.push((schema.add_text_field(name, options), analyzer(language)));
        }
        let index = Index::create_in_ram(schema.build());
        for ((_, analyzer), (name, _)) in indexed.iter().zip(ANALYZERS) {
            index.tokenizers().register(name, analyzer.clone());
        }

        let mut writer: IndexWriter<TantivyDocument> = index
            .writer_with_num_threads(1, WRITER_MEMORY)
            .map_err(|e| index_error("creating the index writer", e))?;
        for chunk in passages {
            let mut document = doc!(text => chunk.text.as_str(), source => chunk.source.as_str());
            for (field, _) in &indexed {
                document.add_text(*field, &chunk.text);
            }
            writer
                .add_document(document)
                .map_err(|e| index_error("indexing a passage", e))?;
        }
        writer
            .commit()
            .map_err(|e| index_error("committing the index", e))?;
        writer
            .wait_merging_threads()
            .map_err(|e| index_error("finishing the index", e))?;
        let reader: IndexReader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(|e| index_error("opening the index", e))?;
        Ok(LocalKnowledgeBase {
            dir: dir.to_path_buf(),
            reader,
            text,
            source,
            indexed,
            passages: passages.len(),
        })
    }

    /// The folder indexed.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How many passages the index holds.
    pub fn len(&self) -> usize {
        self.passages
    }

    pub fn is_empty(&self) -> bool {
        self.passages == 0
    }

    /// Any of the query's words, in any field; built by hand so that no
    /// user text is read as query syntax.
    fn query(&self, query: &str) -> Option<BooleanQuery> {
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for (field, analyzer) in &self.indexed {
            let mut analyzer = analyzer.clone();
            let mut stream = analyzer.token_stream(query);
            let mut seen = HashSet::new();
            while seen.len() < MAX_QUERY_TERMS && stream.advance() {
                let word = &stream.token().text;
                if seen.insert(word.clone()) {
                    let term = Term::from_field_text(*field, word);
                    clauses.push((
                        Occur::Should,
                        Box::new(TermQuery::new(term, IndexRecordOption::WithFreqs)),
                    ));
                }
            }
        }
        (!clauses.is_empty()).then(|| BooleanQuery::new(clauses))
    }

    fn search_now(&self, query: &str, limit: usize) -> Result<Vec<Passage>> {
        let limit = limit.min(MAX_LIMIT).min(self.passages);
        if limit == 0 {
            return Ok(Vec::new());
        }
        let Some(query) = self.query(query) else {
            return Ok(Vec::new());
        };
        let searcher = self.reader.searcher();
        let hits = searcher
            .search(&query, &TopDocs::with_limit(limit).order_by_score())
            .map_err(|e| index_error("searching", e))?;
        let mut found = Vec::with_capacity(hits.len());
        for (score, address) in hits {
            let document: TantivyDocument = searcher
                .doc(address)
                .map_err(|e| index_error("reading a passage", e))?;
            let field = |f: Field| {
                document
                    .get_first(f)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string()
            };
            found.push(Passage {
                text: field(self.text),
                source: field(self.source),
                score,
            });
        }
        Ok(found)
    }
}

#[async_trait]
impl KnowledgeBase for LocalKnowledgeBase {
    async fn search(&self, query: &str, limit: usize) -> Result<Vec<Passage>> {
        // An in-RAM index of a folder of notes answers in microseconds:
        // not worth a trip to the blocking pool.
        self.search_now(query, limit)
    }
}

fn index_error(context: &str, e: tantivy::TantivyError) -> Error {
    Error::dependency(SERVICE, context.to_string(), false, e)
}

/// Words, lowercased, without the stop words of the three languages, stemmed
/// in `language` if any, and with accents folded.
///
/// The stop word lists and the stemmers are written for accented words
/// (`está`, `-ación`), so both run before folding. A user's unaccented word
/// may then stem differently from the accented one in a file (`informacion`
/// stays whole, `información` becomes `inform`): the unstemmed field still
/// matches it. In that field the stop words run again after folding, for what folds
/// into one (`é` -> `e`).
fn analyzer(language: Option<Language>) -> TextAnalyzer {
    let stop = || {
        [Language::Spanish, Language::Portuguese, Language::English]
            .map(|l| StopWordFilter::new(l).unwrap_or_else(|| StopWordFilter::remove([])))
    };
    let [es, pt, en] = stop();
    let words = TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(MAX_TOKEN_CHARS))
        .filter(LowerCaser)
        .filter(es)
        .filter(pt)
        .filter(en);
    match language {
        Some(language) => words
            .filter(Stemmer::new(language))
            .filter(AsciiFoldingFilter)
            .build(),
        None => {
            let [es, pt, en] = stop();
            words
                .filter(AsciiFoldingFilter)
                .filter(es)
                .filter(pt)
                .filter(en)
                .build()
        }
    }
}

/// Collects `*.md` files under `dir`. Symbolic links to folders are not
/// followed (they could loop); links to files are.
fn markdown_files(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Error::Config(format!("knowledge folder {}: {e}", dir.display())))?;
    for entry in entries {
        let entry =
            entry.map_err(|e| Error::Config(format!("knowledge folder {}: {e}", dir.display())))?;
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let kind = entry
            .file_type()
            .map_err(|e| Error::Config(format!("knowledge file {}: {e}", path.display())))?;
        if kind.is_dir() {
            markdown_files(&path, files)?;
        } else if path
            .extension()
            .is_some_and(|ext| ext.eq_ignore_ascii_case("md"))
            && path.is_file()
        {
            files.push(path);
        }
    }
    Ok(())
}

/// `faq/envios.md` for `{dir}/faq/envios.md`, with `/` on every platform.
fn relative_name(dir: &Path, path: &Path) -> String {
    let relative = path.strip_prefix(dir).unwrap_or(path);
    relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// One passage before indexing.
#[derive(Debug, Clone, PartialEq)]
struct Chunk {
    text: String,
    source: String,
}

/// A heading and the lines under it, up to the next heading.
struct Section {
    heading: String,
    /// The headings above it and its own, `Envíos > Costos de envío`: what
    /// its passages start with, so that each stands on its own.
    trail: String,
    body: Vec<String>,
}

/// The open headings, by level, while a file is read.
#[derive(Default)]
struct Trail(Vec<(usize, String)>);

impl Trail {
    fn enter(&mut self, level: usize, heading: &str) -> Section {
        while self.0.last().is_some_and(|(l, _)| *l >= level) {
            self.0.pop();
        }
        self.0.push((level, heading.to_string()));
        let trail = self
            .0
            .iter()
            .map(|(_, h)| h.as_str())
            .filter(|h| !h.is_empty())
            .collect::<Vec<_>>()
            .join(" > ");
        Section {
            heading: heading.to_string(),
            trail,
            body: Vec::new(),
        }
    }
}

/// The longest heading trail a passage starts with; past it, only the
/// section's own heading, cut to this.
const MAX_TRAIL_CHARS: usize = MAX_PASSAGE_CHARS / 4;

/// Cuts a Markdown file into passages: one per section (ATX `#` headings and
/// setext underlines; `#` inside fenced code is code), long sections in
/// pieces. Text before the first heading is a passage named by the file
/// alone; a YAML front matter block is skipped.
fn split_markdown(file: &str, text: &str) -> Vec<Chunk> {
    let mut trail = Trail::default();
    let mut sections = vec![Section {
        heading: String::new(),
        trail: String::new(),
        body: Vec::new(),
    }];
    let mut fence: Option<(char, usize)> = None;
    let mut lines = text.lines().peekable();
    if lines.peek().is_some_and(|l| l.trim_end() == "---") {
        lines.next();
        for line in lines.by_ref() {
            if matches!(line.trim_end(), "---" | "...") {
                break;
            }
        }
    }
    for line in lines {
        let line = line.trim_end();
        let Some(section) = sections.last_mut() else {
            break;
        };
        if let Some((ch, len)) = fence {
            if fence_marker(line).is_some_and(|(c, n)| c == ch && n >= len) {
                fence = None;
            }
            section.body.push(line.to_string());
            continue;
        }
        if let Some(marker) = fence_marker(line) {
            fence = Some(marker);
            section.body.push(line.to_string());
            continue;
        }
        if let Some((level, heading)) = atx_heading(line) {
            sections.push(trail.enter(level, &heading));
            continue;
        }
        if let Some(level) = setext_level(line) {
            if let Some(previous) = section.body.last().filter(|l| is_paragraph_line(l)) {
                let heading = previous.trim().to_string();
                section.body.pop();
                sections.push(trail.enter(level, &heading));
                continue;
            }
        }
        section.body.push(line.to_string());
    }

    let mut chunks = Vec::new();
    for section in sections {
        let source = if section.heading.is_empty() {
            file.to_string()
        } else {
            format!("{file}#{}", section.heading)
        };
        let prefix = if section.trail.chars().count() <= MAX_TRAIL_CHARS {
            section.trail
        } else {
            section.heading.chars().take(MAX_TRAIL_CHARS).collect()
        };
        let budget = MAX_PASSAGE_CHARS - prefix.chars().count() - 2;
        for piece in pack_paragraphs(&section.body, budget) {
            let text = if prefix.is_empty() {
                piece
            } else {
                format!("{prefix}\n\n{piece}")
            };
            chunks.push(Chunk {
                text,
                source: source.clone(),
            });
        }
    }
    chunks
}

/// ```` ``` ```` or `~~~` (three or more), indented by at most three spaces.
fn fence_marker(line: &str) -> Option<(char, usize)> {
    let trimmed = line.strip_prefix("   ").or_else(|| line.strip_prefix("  "));
    let trimmed = trimmed.or_else(|| line.strip_prefix(' ')).unwrap_or(line);
    let ch = trimmed.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let len = trimmed.chars().take_while(|c| *c == ch).count();
    (len >= 3).then_some((ch, len))
}

/// `## Costos de envío ##` -> `(2, "Costos de envío")`.
fn atx_heading(line: &str) -> Option<(usize, String)> {
    let indent = line.len() - line.trim_start_matches(' ').len();
    if indent > 3 {
        return None;
    }
    let rest = &line[indent..];
    let level = rest.chars().take_while(|c| *c == '#').count();
    if level == 0 || level > 6 {
        return None;
    }
    let rest = &rest[level..];
    if !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
        return None;
    }
    let rest = rest.trim();
    // A closing run of `#` is decoration, when a space separates it.
    let without_closing = rest.trim_end_matches('#');
    let heading = if without_closing.is_empty() || without_closing.ends_with([' ', '\t']) {
        without_closing.trim_end()
    } else {
        rest
    };
    Some((level, heading.to_string()))
}

/// `===` under a line makes it a level 1 heading, `---` a level 2 one.
fn setext_level(line: &str) -> Option<usize> {
    let trimmed = line.trim();
    if line.len() - line.trim_start().len() > 3 || trimmed.is_empty() {
        None
    } else if trimmed.chars().all(|c| c == '=') {
        Some(1)
    } else if trimmed.chars().all(|c| c == '-') {
        Some(2)
    } else {
        None
    }
}

/// A line that can be a setext heading's text: not blank, not a list item,
/// quote or table row.
fn is_paragraph_line(line: &str) -> bool {
    let trimmed = line.trim();
    !trimmed.is_empty()
        && !trimmed.starts_with(['-', '*', '+', '>', '|', '`', '~'])
        && !trimmed
            .split_once(". ")
            .is_some_and(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
}

/// Paragraphs (separated by blank lines) packed into pieces of at most
/// `budget` characters; a paragraph longer than that is cut.
fn pack_paragraphs(lines: &[String], budget: usize) -> Vec<String> {
    let mut paragraphs = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for line in lines {
        if line.trim().is_empty() {
            if !current.is_empty() {
                paragraphs.push(current.join("\n"));
                current.clear();
            }
        } else {
            current.push(line);
        }
    }
    if !current.is_empty() {
        paragraphs.push(current.join("\n"));
    }

    let mut pieces = Vec::new();
    let mut piece = String::new();
    let mut piece_chars = 0;
    for paragraph in paragraphs {
        for part in cut(&paragraph, budget) {
            let chars = part.chars().count();
            if !piece.is_empty() && piece_chars + 2 + chars > budget {
                pieces.push(std::mem::take(&mut piece));
                piece_chars = 0;
            }
            if !piece.is_empty() {
                piece.push_str("\n\n");
                piece_chars += 2;
            }
            piece.push_str(part);
            piece_chars += chars;
        }
    }
    if !piece.is_empty() {
        pieces.push(piece);
    }
    pieces
}

/// `text` in parts of at most `budget` characters, cut at the last line
/// break, else the last space, in the second half of each window; a word
/// longer than that is cut where it must be.
fn cut(text: &str, budget: usize) -> Vec<&str> {
    let budget = budget.max(1);
    let mut parts = Vec::new();
    let mut rest = text.trim();
    while rest.chars().count() > budget {
        let window_end = rest
            .char_indices()
            .nth(budget)
            .map_or(rest.len(), |(i, _)| i);
        let window = &rest[..window_end];
        let half = window.char_indices().nth(budget / 2).map_or(0, |(i, _)| i);
        let at = [window.rfind('\n'), window.rfind(' ')]
            .into_iter()
            .flatten()
            .find(|i| *i >= half && *i > 0)
            .unwrap_or(window_end);
        let (part, tail) = rest.split_at(at);
        let part = part.trim_end();
        if !part.is_empty() {
            parts.push(part);
        }
        rest = tail.trim_start();
    }
    if !rest.is_empty() {
        parts.push(rest);
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn demo_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../profiles/demo/knowledge")
    }

    fn demo() -> LocalKnowledgeBase {
        LocalKnowledgeBase::open(&demo_dir()).expect("demo knowledge folder")
    }

    async fn first(kb: &LocalKnowledgeBase, query: &str) -> Passage {
        kb.search(query, 3)
            .await
            .expect("search")
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("nothing found for {query:?}"))
    }

    #[tokio::test]
    async fn the_shipping_cost_question_finds_the_shipping_passage_first() {
        let kb = demo();
        for query in [
            "¿cuánto cuesta el envío?",
            "cuanto cuesta el envio",
            "envio",
        ] {
            let top = first(&kb, query).await;
            assert_eq!(top.source, "envios.md#Costos de envío", "{query:?}");
            assert!(top.text.contains("$50"), "{query:?}: {}", top.text);
        }
        for query in ["ENVÍOS", "envíos a todo el país", "shipping"] {
            let top = first(&kb, query).await;
            assert!(
                top.source.starts_with("envios.md"),
                "{query:?} found {}",
                top.source
            );
        }
    }

    #[tokio::test]
    async fn hours_are_found_with_or_without_accents() {
        let kb = demo();
        for query in ["horarios", "¿a qué hora abren?", "horario de atencion"] {
            let top = first(&kb, query).await;
            // The Spanish hours, or the same in Portuguese.
            assert!(
                top.source.starts_with("horarios.md#Hor"),
                "{query:?} found {}",
                top.source
            );
            assert!(
                top.text.contains("18 horas"),
                "{query:?} found {}",
                top.text
            );
        }
    }

    #[tokio::test]
    async fn portuguese_and_english_questions_find_their_answers() {
        let kb = demo();
        let top = first(&kb, "qual é o preço do frete?").await;
        assert!(top.source.starts_with("envios.md#"), "{}", top.source);
        let top = first(&kb, "what are your opening hours").await;
        assert!(top.text.contains("9"), "{}", top.text);
        let top = first(&kb, "Mercado Pago").await;
        assert!(top.source.starts_with("pagos.md#"), "{}", top.source);
    }

    #[tokio::test]
    async fn sources_name_the_file_and_the_heading() {
        let kb = demo();
        let sources: Vec<String> = kb
            .search("envío gratis costo", 10)
            .await
            .expect("search")
            .into_iter()
            .map(|p| p.source)
            .collect();
        assert!(
            sources.iter().any(|s| s == "envios.md#Costos de envío"),
            "{sources:?}"
        );
    }

    #[tokio::test]
    async fn results_are_best_first_and_bounded_by_the_limit() {
        let kb = demo();
        let found = kb
            .search("plan precio envío pago", 2)
            .await
            .expect("search");
        assert_eq!(found.len(), 2);
        assert!(found[0].score >= found[1].score);
        assert!(kb.search("envío", 0).await.expect("search").is_empty());
        let many = kb.search("envío", usize::MAX).await.expect("search");
        assert!(!many.is_empty() && many.len() <= kb.len());
    }

    #[tokio::test]
    async fn nonsense_and_stop_words_find_nothing() {
        let kb = demo();
        for query in ["xyzzy qwrtp", "", "   ", "¿¡!?", "de la que el", "🙂🙂"] {
            let found = kb.search(query, 5).await.expect("search");
            assert!(found.is_empty(), "{query:?} found {found:?}");
        }
    }

    #[tokio::test]
    async fn query_syntax_is_just_words() {
        let kb = demo();
        for query in [
            "envio AND(",
            "\"envío",
            "text:envío",
            "envío^3 -",
            "[a TO b",
            "*",
            "envío OR OR NOT",
        ] {
            kb.search(query, 5).await.expect("never fails");
        }
        let top = first(&kb, "envío AND(").await;
        assert!(top.source.starts_with("envios.md#"), "{}", top.source);
    }

    #[test]
    fn a_missing_folder_is_a_configuration_error_naming_it() {
        let err = LocalKnowledgeBase::open(Path::new("/no/such/knowledge")).expect_err("missing");
        match err {
            Error::Config(message) => assert!(message.contains("/no/such/knowledge"), "{message}"),
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn an_empty_folder_is_an_empty_knowledge_base() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("notes.txt"), "not markdown").expect("write");
        let kb = LocalKnowledgeBase::open(dir.path()).expect("empty is fine");
        assert!(kb.is_empty());
        assert!(kb.search("envío", 5).await.expect("search").is_empty());
    }

    #[tokio::test]
    async fn subfolders_are_indexed_and_named_by_their_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("faq/extra")).expect("mkdir");
        std::fs::create_dir_all(dir.path().join(".git")).expect("mkdir");
        std::fs::write(
            dir.path().join("faq/extra/garantia.MD"),
            "# Garantía\n\nUn año de garantía oficial.\n",
        )
        .expect("write");
        std::fs::write(dir.path().join(".git/x.md"), "# Garantía\n\nhidden\n").expect("write");
        let kb = LocalKnowledgeBase::open(dir.path()).expect("open");
        let found = kb.search("garantia", 5).await.expect("search");
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].source, "faq/extra/garantia.MD#Garantía");
        assert_eq!(found[0].text, "Garantía\n\nUn año de garantía oficial.");
    }

    #[test]
    fn markdown_is_cut_at_headings_and_not_inside_code() {
        let text = "---\ntitle: x\n---\nIntro line.\n\n# Uno #\n\nTexto uno.\n\n```\n# not a heading\n```\n\nDos\n===\n\nTexto dos.\n\n## \n\nsin título\n";
        let chunks = split_markdown("f.md", text);
        let got: Vec<(&str, &str)> = chunks
            .iter()
            .map(|c| (c.source.as_str(), c.text.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("f.md", "Intro line."),
                ("f.md#Uno", "Uno\n\nTexto uno.\n\n```\n# not a heading\n```"),
                ("f.md#Dos", "Dos\n\nTexto dos."),
                ("f.md", "Dos\n\nsin título"),
            ]
        );
    }

    #[test]
    fn passages_start_with_the_headings_above_them() {
        let text = "# A\n## B\ntext b\n### C\ntext c\n## D\ntext d\n# E\ntext e\n";
        let got: Vec<(String, String)> = split_markdown("f.md", text)
            .into_iter()
            .map(|c| (c.source, c.text))
            .collect();
        let want = [
            ("f.md#B", "A > B\n\ntext b"),
            ("f.md#C", "A > B > C\n\ntext c"),
            ("f.md#D", "A > D\n\ntext d"),
            ("f.md#E", "E\n\ntext e"),
        ];
        assert_eq!(got, want.map(|(s, t)| (s.to_string(), t.to_string())));
    }

    #[test]
    fn a_heading_without_text_under_it_is_no_passage() {
        let chunks = split_markdown("f.md", "# Envíos\n## Costos\n\nGratis desde $50.\n");
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].source, "f.md#Costos");
    }

    #[test]
    fn a_long_section_is_cut_into_bounded_passages_that_keep_every_word() {
        let paragraph = "Los envíos llegan en dos a cinco días hábiles. ".repeat(20);
        let body = format!(
            "# Envíos\n\n{paragraph}\n\n{paragraph}\n\n{}\n",
            "x".repeat(3000)
        );
        let chunks = split_markdown("envios.md", &body);
        assert!(chunks.len() > 3, "{}", chunks.len());
        for chunk in &chunks {
            assert!(
                chunk.text.chars().count() <= MAX_PASSAGE_CHARS,
                "{}",
                chunk.text.len()
            );
            assert!(chunk.text.starts_with("Envíos\n\n"));
            assert_eq!(chunk.source, "envios.md#Envíos");
        }
        let words = |s: &str| {
            s.split_whitespace()
                .filter(|w| *w != "Envíos")
                .collect::<String>()
        };
        let joined: String = chunks.iter().map(|c| words(&c.text)).collect();
        assert_eq!(joined, words(&body).replace('#', ""));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn any_text_is_searchable_without_error(query in "\\PC{0,200}", limit in 0usize..20) {
            let kb = shared_demo();
            let found = block_on(kb.search(&query, limit));
            let found = found.map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(found.len() <= limit);
        }

        #[test]
        fn query_syntax_soup_is_searchable_without_error(
            query in "[a-zA-Zéñ0-9 \"'():^*~+\\-\\[\\]{}!?<>=:/\\\\]{0,80}",
        ) {
            let found = block_on(shared_demo().search(&query, 5));
            prop_assert!(found.is_ok(), "{:?}", found);
        }

        #[test]
        fn any_markdown_splits_into_bounded_passages(text in "(\\PC{0,80}\n?){0,60}") {
            for chunk in split_markdown("f.md", &text) {
                prop_assert!(chunk.text.chars().count() <= MAX_PASSAGE_CHARS);
                prop_assert!(!chunk.text.trim().is_empty());
            }
        }

        #[test]
        fn cut_parts_are_bounded_and_lose_nothing(text in "\\PC{0,400}", budget in 1usize..60) {
            let parts = cut(&text, budget);
            for part in &parts {
                prop_assert!(part.chars().count() <= budget);
            }
            let squash = |s: &str| s.split_whitespace().collect::<String>();
            prop_assert_eq!(parts.iter().map(|p| squash(p)).collect::<String>(), squash(&text));
        }
    }

    /// One demo index for all property-test cases.
    fn shared_demo() -> &'static LocalKnowledgeBase {
        static KB: std::sync::OnceLock<LocalKnowledgeBase> = std::sync::OnceLock::new();
        KB.get_or_init(demo)
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(f)
    }
}
