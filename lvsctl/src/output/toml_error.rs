//! `toml` parse errors on one line, as the CLI prints errors.

/// `toml` errors span several lines (position, source excerpt, message); the CLI prints one:
/// `FILE: line 3, column 1: unknown field ...`.
pub fn toml_error(file: &str, err: &str) -> String {
    let lines: Vec<&str> = err.lines().collect();
    let position = lines.first().and_then(|l| {
        let at = l.find("line ")?;
        Some(l[at..].trim().to_string())
    });
    let message: Vec<&str> = lines
        .iter()
        .skip(1)
        .map(|l| l.trim())
        .filter(|l| !l.is_empty() && !l.starts_with('|') && !is_excerpt(l))
        .collect();
    match position {
        Some(p) if !message.is_empty() => format!("{file}: {p}: {}", message.join("; ")),
        _ => format!(
            "{file}: {}",
            lines
                .iter()
                .map(|l| l.trim())
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join("; ")
        ),
    }
}

/// Excerpt lines look like `3 | schedulr = "rr"`.
fn is_excerpt(l: &str) -> bool {
    match l.split_once('|') {
        Some((n, _)) => n.trim().chars().all(|c| c.is_ascii_digit()),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cluster_core::model::Config;

    #[test]
    fn toml_errors_fit_on_one_line() {
        let err = Config::from_toml("[[service]]\nkey = \"tcp/10.0.0.1:80\"\nschedulr = \"rr\"\n")
            .unwrap_err();
        let line = toml_error("web.toml", &err);
        assert!(!line.contains('\n'), "{line}");
        assert!(line.starts_with("web.toml: line 3, column 1: "), "{line}");
        assert!(line.contains("schedulr"), "{line}");
    }
}
