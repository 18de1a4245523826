//! A driver's settings form, rendered from the JSON Schema its `describe()` returns (the
//! `configschema` of listPlugins), so a dropped-in driver is configured with no console
//! change. The values are sent as the command's `details` map; the API's message about one
//! of them ("Invalid detail quota-mib=0: …") is shown beside that field.

use std::collections::BTreeMap;

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::{Map, Value};

use crate::api::{self, s};
use crate::i18n::tr;

pub const STRINGS: &[(&str, &str, &str)] = &[
    ("df.title", "Driver settings", "驱动设置"),
    ("df.storage_driver", "Storage driver", "存储驱动"),
    ("df.by_url", "By the URL's scheme (nfs, file)", "按 URL 协议（nfs、file）"),
    ("df.required", "required", "必填"),
    ("df.none", "This driver has no settings.", "此驱动没有设置项。"),
];

/// Values by key; each field writes its own.
pub type Values = RwSignal<BTreeMap<String, String>>;

/// The API's message and the key it is about.
pub type DetailError = RwSignal<Option<(String, String)>>;

/// A choice of the loaded storage drivers, or none: the server then picks one by the
/// URL's scheme.
#[component]
pub fn StorageDriverSelect(id: &'static str, plugins: RwSignal<Vec<Value>>, value: RwSignal<String>) -> impl IntoView {
    view! {
        <label class="field">
            <span>{tr("df.storage_driver")}</span>
            <select id=id prop:value=value on:change=move |ev| value.set(event_target_value(&ev))>
                <option value="">{tr("df.by_url")}</option>
                {move || {
                    plugins
                        .get()
                        .into_iter()
                        .filter(|p| s(p, "kind") == "storage")
                        .map(|p| {
                            let name = s(&p, "name").to_owned();
                            view! { <option value=name.clone()>{name.clone()}</option> }
                        })
                        .collect_view()
                }}
            </select>
        </label>
    }
}

/// The loaded drivers (listPlugins), read once per form; empty when the caller may not list them.
pub fn load_plugins() -> RwSignal<Vec<Value>> {
    let plugins = RwSignal::new(Vec::new());
    spawn_local(async move {
        if let Ok((items, _)) = api::list("listPlugins", "plugin", &[]).await {
            plugins.set(items.into_iter().filter(|p| s(p, "state") == "Loaded").collect());
        }
    });
    plugins
}

/// The schema of the driver named `name`, when it is loaded and declares one.
pub fn schema_of(plugins: &[Value], name: &str) -> Option<Value> {
    plugins.iter().find(|p| s(p, "name") == name).and_then(|p| p.get("configschema")).cloned()
}

fn properties(schema: &Value) -> Map<String, Value> {
    schema.get("properties").and_then(Value::as_object).cloned().unwrap_or_default()
}

/// A JSON value as a form value (`"a"` → `a`, `5` → `5`).
fn text_of(v: &Value) -> String {
    match v {
        Value::String(t) => t.clone(),
        other => other.to_string(),
    }
}

/// The schema's defaults: the form's values when a driver is chosen.
pub fn defaults(schema: Option<&Value>) -> BTreeMap<String, String> {
    let props = schema.map(properties).unwrap_or_default();
    props
        .iter()
        .map(|(k, p)| {
            let v = match (p.get("default"), p.get("type").and_then(Value::as_str)) {
                (Some(d), _) => text_of(d),
                (None, Some("boolean")) => "false".into(),
                _ => String::new(),
            };
            (k.clone(), v)
        })
        .collect()
}

/// The filled values as CloudStack's `details[i].key` / `details[i].value` parameters.
pub fn details_params(values: &BTreeMap<String, String>) -> Vec<(String, String)> {
    values
        .iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .enumerate()
        .flat_map(|(i, (k, v))| {
            [(format!("details[{i}].key"), k.clone()), (format!("details[{i}].value"), v.trim().to_owned())]
        })
        .collect()
}

/// Which detail the API's message is about: "Invalid detail k=v: …", "Missing detail k: …",
/// "Unknown detail k: …".
pub fn detail_of(message: &str) -> Option<String> {
    let rest =
        ["Invalid detail ", "Missing detail ", "Unknown detail "].iter().find_map(|p| message.strip_prefix(p))?;
    let key = rest.split(['=', ':']).next()?.trim();
    (!key.is_empty()).then(|| key.to_owned())
}

/// The form for `schema`: a text or number input, a checkbox for a boolean, a select for an
/// enum; labelled by `title` (else the key), with `description` beneath and a mark when
/// required. Field ids are `<form>-detail-<key>`.
#[component]
pub fn DriverSettings(
    form: &'static str,
    #[prop(into)] schema: Signal<Option<Value>>,
    values: Values,
    error: DetailError,
) -> impl IntoView {
    view! {
        <div class="driver-settings" id=format!("{form}-settings")>
            {move || {
                let schema = schema.get();
                let props = schema.as_ref().map(properties).unwrap_or_default();
                if props.is_empty() {
                    return view! { <p class="muted df-none">{tr("df.none")}</p> }.into_any();
                }
                let required: Vec<String> = schema
                    .as_ref()
                    .and_then(|s| s.get("required"))
                    .and_then(Value::as_array)
                    .map(|r| r.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                    .unwrap_or_default();
                let title = schema.as_ref().map(|s| str_of(s, "title")).unwrap_or_default();
                view! {
                    <h4>{tr("df.title")} {(!title.is_empty()).then(|| format!(" · {title}"))}</h4>
                    {props
                        .into_iter()
                        .map(|(key, prop)| field(form, key.clone(), prop, required.contains(&key), values, error))
                        .collect_view()}
                }
                    .into_any()
            }}
        </div>
    }
}

/// A string field of a JSON object, or "".
fn str_of(v: &Value, k: &str) -> String {
    v.get(k).and_then(Value::as_str).unwrap_or("").to_owned()
}

fn field(
    form: &'static str,
    key: String,
    prop: Value,
    required: bool,
    values: Values,
    error: DetailError,
) -> impl IntoView {
    let id = format!("{form}-detail-{key}");
    let label = Some(str_of(&prop, "title")).filter(|t| !t.is_empty()).unwrap_or_else(|| key.clone());
    let description = str_of(&prop, "description");
    let kind = str_of(&prop, "type");
    let choices: Vec<String> =
        prop.get("enum").and_then(Value::as_array).map(|e| e.iter().map(text_of).collect()).unwrap_or_default();
    let k = key.clone();
    let value = move || values.with(|m| m.get(&k).cloned().unwrap_or_default());
    let k = key.clone();
    let set = move |v: String| {
        values.update(|m| {
            m.insert(k.clone(), v);
        })
    };
    let k = key.clone();
    let mine = move || error.with(|e| e.as_ref().filter(|(f, _)| *f == k).map(|(_, t)| t.clone()));
    let mine_again = mine.clone();
    // "Not set" is a choice only where the driver has no default to fall back on.
    let blank = !required && prop.get("default").is_none();
    let input = if !choices.is_empty() {
        let set = set.clone();
        view! {
            <select id=id.clone() name=key.clone() prop:value=value.clone() on:change=move |ev| set(event_target_value(&ev))>
                {blank.then(|| view! { <option value=""></option> })}
                {choices.into_iter().map(|c| view! { <option value=c.clone()>{c.clone()}</option> }).collect_view()}
            </select>
        }
            .into_any()
    } else if kind == "boolean" {
        let set = set.clone();
        let value = value.clone();
        view! {
            <input
                id=id.clone()
                name=key.clone()
                type="checkbox"
                prop:checked=move || value() == "true"
                on:change=move |ev| set(if event_target_checked(&ev) { "true".into() } else { "false".into() })
            />
        }
        .into_any()
    } else {
        let numeric = matches!(kind.as_str(), "integer" | "number");
        let bound = |b: &str| prop.get(b).map(text_of);
        let set = set.clone();
        view! {
            <input
                id=id.clone()
                name=key.clone()
                type=if numeric { "number" } else { "text" }
                step=(kind == "integer").then_some("1")
                min=bound("minimum")
                max=bound("maximum")
                required=required
                prop:value=value.clone()
                on:input=move |ev| set(event_target_value(&ev))
            />
        }
        .into_any()
    };
    view! {
        <label class="field detail" class:invalid=move || mine_again().is_some() data-key=key.clone()>
            <span>
                {label}
                {required.then(|| view! { <abbr class="required" title=tr("df.required")>" *"</abbr> })}
            </span>
            {input}
            {(!description.is_empty()).then(|| view! { <small class="muted">{description}</small> })}
            <span class="field-error" role="alert">
                {mine}
            </span>
        </label>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_and_details() {
        let schema = json!({"properties": {"a": {"type": "integer", "default": 3}, "b": {"type": "boolean"}, "c": {}}});
        let d = defaults(Some(&schema));
        assert_eq!(d["a"], "3");
        assert_eq!(d["b"], "false");
        assert_eq!(d["c"], "");
        let p = details_params(&d);
        assert_eq!(p[0], ("details[0].key".to_owned(), "a".to_owned()));
        assert_eq!(p[3], ("details[1].value".to_owned(), "false".to_owned()));
        assert_eq!(p.len(), 4, "an empty value is not sent");
    }

    #[test]
    fn messages_find_their_detail() {
        assert_eq!(detail_of("Invalid detail quota-mib=0: must be at least 1").as_deref(), Some("quota-mib"));
        assert_eq!(detail_of("Missing detail quota-mib: dirpool requires it").as_deref(), Some("quota-mib"));
        assert_eq!(detail_of("Unknown detail x: p takes a").as_deref(), Some("x"));
        assert_eq!(detail_of("Invalid value of parameter url: x"), None);
    }
}
