//! The operator's branding (`/client/branding.json`, from the server's data folder):
//! product name, logo, colours, footer, links and default language, applied at load.

use serde_json::Value;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    pub label: String,
    pub url: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Branding {
    pub product_name: String,
    pub logo_url: String,
    pub footer: String,
    pub links: Vec<Link>,
    pub default_language: String,
}

impl Default for Branding {
    fn default() -> Self {
        Branding {
            product_name: "wasmstack".into(),
            logo_url: String::new(),
            footer: String::new(),
            links: Vec::new(),
            default_language: "en".into(),
        }
    }
}

/// The colour names a branding file may set, as CSS variables `--<name>` (underscores become dashes).
const COLORS: &[&str] = &["primary", "primary_text", "background", "surface", "text", "nav_background", "nav_text"];

/// Fetches the branding; the built-in look when it cannot be had.
pub async fn load() -> (Branding, Value) {
    let fetched = async {
        let window = web_sys::window()?;
        let response: web_sys::Response =
            JsFuture::from(window.fetch_with_str("/client/branding.json")).await.ok()?.dyn_into().ok()?;
        if !response.ok() {
            return None;
        }
        let text = JsFuture::from(response.text().ok()?).await.ok()?.as_string()?;
        serde_json::from_str::<Value>(&text).ok()
    }
    .await
    .unwrap_or(Value::Null);
    (parse(&fetched), fetched)
}

fn parse(v: &Value) -> Branding {
    let d = Branding::default();
    let text = |k: &str, default: String| v.get(k).and_then(Value::as_str).map(str::to_owned).unwrap_or(default);
    let links = v
        .get("links")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|l| {
                    Some(Link { label: l.get("label")?.as_str()?.to_owned(), url: l.get("url")?.as_str()?.to_owned() })
                })
                .collect()
        })
        .unwrap_or_default();
    Branding {
        product_name: text("product_name", d.product_name),
        logo_url: text("logo_url", d.logo_url),
        footer: text("footer", d.footer),
        links,
        default_language: text("default_language", d.default_language),
    }
}

/// Sets the page title and the colour variables the stylesheet reads.
pub fn apply(b: &Branding, raw: &Value) {
    let Some(document) = web_sys::window().and_then(|w| w.document()) else { return };
    document.set_title(&b.product_name);
    let Some(root) = document.document_element().and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok()) else {
        return;
    };
    let Some(colors) = raw.get("colors").and_then(Value::as_object) else { return };
    for name in COLORS {
        // Only plain colour values: the file is the operator's, but a stray `;` or `}`
        // should not turn into CSS that breaks the page.
        if let Some(c) = colors.get(*name).and_then(Value::as_str).filter(|c| safe_color(c)) {
            let _ = root.style().set_property(&format!("--{}", name.replace('_', "-")), c);
        }
    }
}

fn safe_color(c: &str) -> bool {
    !c.is_empty() && c.len() < 64 && c.chars().all(|ch| ch.is_ascii_alphanumeric() || " #(),.%-".contains(ch))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_falls_back() {
        let b =
            parse(&serde_json::json!({"product_name": "Acme", "links": [{"label": "Docs", "url": "/d"}, {"x": 1}]}));
        assert_eq!(b.product_name, "Acme");
        assert_eq!(b.links, vec![Link { label: "Docs".into(), url: "/d".into() }]);
        assert_eq!(b.default_language, "en");
        assert!(safe_color("#ff0000") && safe_color("rgb(1, 2, 3)"));
        assert!(!safe_color("red; background: url(x)"));
    }
}
