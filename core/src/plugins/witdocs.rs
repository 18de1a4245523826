//! `wasmstack plugins wit-docs`: a Markdown reference of the WIT this server speaks,
//! made from the doc comments in `wit/`, so the reference cannot say other than the
//! contract does.

use super::scaffold::WIT_FILES;

/// The reference, as Markdown.
pub fn render() -> String {
    let mut out = format!(
        "# WIT reference\n\nGenerated from `wit/` by `wasmstack plugins wit-docs`; do not edit by hand.\n\n\
         Package `{}`.\n",
        super::host::SUPPORTED_WIT
    );
    for (file, text) in WIT_FILES {
        out.push_str(&format!("\n<!-- {file} -->\n"));
        let mut depth = 0usize;
        let mut doc: Vec<&str> = Vec::new();
        for line in text.lines() {
            let t = line.trim();
            if let Some(d) = t.strip_prefix("///") {
                doc.push(d.trim());
                continue;
            }
            if t == "}" {
                depth = depth.saturating_sub(1);
                continue;
            }
            if t.is_empty() || t.starts_with("package ") || t.starts_with("use ") {
                doc.clear();
                continue;
            }
            let opens = t.ends_with('{');
            let head = t.trim_end_matches('{').trim().trim_end_matches([',', ';']);
            match depth {
                0 | 1 => {
                    let hashes = if depth == 0 { "##" } else { "###" };
                    out.push_str(&format!("\n{hashes} `{head}`\n"));
                    if !doc.is_empty() {
                        out.push_str(&format!("\n{}\n", paragraph(&doc)));
                    }
                }
                _ => out.push_str(&format!("- `{head}`: {}\n", doc.join(" "))),
            }
            if opens && depth < 2 {
                out.push('\n');
            }
            if opens {
                depth += 1;
            }
            doc.clear();
        }
    }
    out.replace("\n\n\n", "\n\n")
}

fn paragraph(doc: &[&str]) -> String {
    doc.iter().map(|l| if l.is_empty() { "\n" } else { l }).collect::<Vec<_>>().join(" ").replace(" \n ", "\n\n")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_committed_reference_is_up_to_date() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/wit-reference.md");
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == super::render(),
            "docs/wit-reference.md is stale: run wasmstack plugins wit-docs --out docs/wit-reference.md"
        );
    }
}
