//! Folding text for matching words in any of the users' languages.

/// Lowercase, accents folded, every run of non-alphanumerics one space,
/// padded with a space each side, so that `" word "` finds whole words and
/// phrases.
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push(' ');
    for c in text.chars().flat_map(char::to_lowercase) {
        let c = fold_char(c);
        let c = if c.is_alphanumeric() { c } else { ' ' };
        if c == ' ' && out.ends_with(' ') {
            continue;
        }
        out.push(c);
    }
    if !out.ends_with(' ') {
        out.push(' ');
    }
    if out.trim().is_empty() {
        return String::new();
    }
    out
}

/// One lowercase char without its accent (Spanish, Portuguese, and the
/// common Latin ones).
pub fn fold_char(c: char) -> char {
    match c {
        'á' | 'à' | 'â' | 'ã' | 'ä' => 'a',
        'é' | 'è' | 'ê' | 'ë' => 'e',
        'í' | 'ì' | 'î' | 'ï' => 'i',
        'ó' | 'ò' | 'ô' | 'õ' | 'ö' => 'o',
        'ú' | 'ù' | 'û' | 'ü' => 'u',
        'ç' => 'c',
        'ñ' => 'n',
        c => c,
    }
}

/// Whether folded `text` holds the folded phrase as whole words.
pub fn has_phrase(folded_text: &str, folded_phrase: &str) -> bool {
    !folded_phrase.is_empty() && folded_text.contains(folded_phrase)
}
