//! Reply model and its JSON and XML renderings, shaped as `ApiResponseSerializer` shapes them.
//!
//! Every reply sits under one wrapper key, `lower(command) + "response"`. Lists carry `count`
//! (the total, first) and the items under the singular object name; an empty list is `{}`.
//! Null fields are left out everywhere.

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::{Map, Value};

use super::error::{ApiError, ErrorCode};
use super::params::Params;

/// The version clients see in the XML root's `cloud-stack-version` attribute.
pub const CLOUDSTACK_VERSION: &str = "4.20.0.0";

/// The wrapper used when the command is unknown (and for 432).
pub const ERROR_RESPONSE: &str = "errorresponse";

/// What a command answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `{"count":N,"<object>":[…]}`. `count` is the total number of matches, not the page size.
    List {
        object: String,
        count: u64,
        items: Vec<Map<String, Value>>,
    },
    /// One object wrapped under its name: `{"network":{…}}`.
    Object {
        object: String,
        value: Map<String, Value>,
    },
    /// Fields straight under the wrapper (login, logout, queryAsyncJobResult).
    Flat(Map<String, Value>),
    /// `{"success":true}` plus `displaytext` when set.
    Success {
        display_text: Option<String>,
    },
    /// An accepted async job: `{"jobid":…}`, or `{"id":…,"jobid":…}` for create commands.
    AsyncJob {
        job_id: String,
        id: Option<String>,
    },
    Error(ApiError),
}

impl From<ApiError> for Reply {
    fn from(e: ApiError) -> Self {
        Reply::Error(e)
    }
}

impl Reply {
    /// The HTTP status: 200, or the error's code.
    pub fn http_status(&self) -> u16 {
        match self {
            Reply::Error(e) => e.http_status(),
            _ => 200,
        }
    }

    /// The value to store as `jobresult` when an async job ends with this reply:
    /// the object wrapped once (`{"virtualmachine":{…}}`), `{"success":true}` plus `details`,
    /// or `{"errorcode":N,"errortext":…}` for a failure.
    pub fn to_job_result(&self) -> Value {
        let mut m = Map::new();
        match self {
            Reply::List { object, count, items } => {
                if *count != 0 {
                    m.insert("count".into(), (*count).into());
                }
                if !items.is_empty() {
                    let items = items.iter().cloned().map(Value::Object).collect();
                    m.insert(object.clone(), Value::Array(items));
                }
            }
            Reply::Object { object, value } => {
                m.insert(object.clone(), Value::Object(value.clone()));
            }
            Reply::Flat(map) => m = map.clone(),
            Reply::Success { display_text } => {
                m.insert("success".into(), true.into());
                if let Some(t) = display_text {
                    m.insert("details".into(), t.clone().into());
                }
            }
            Reply::AsyncJob { job_id, id } => {
                if let Some(id) = id {
                    m.insert("id".into(), id.clone().into());
                }
                m.insert("jobid".into(), job_id.clone().into());
            }
            Reply::Error(e) => {
                m.insert("errorcode".into(), e.code.code().into());
                m.insert("errortext".into(), e.text.clone().into());
            }
        }
        Value::Object(m)
    }
}

/// The reply format a request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Xml,
}

impl Format {
    /// `response=json` (any case) is JSON; anything else, or nothing, is XML.
    pub fn from_param(value: Option<&str>) -> Format {
        match value {
            Some(v) if v.eq_ignore_ascii_case("json") => Format::Json,
            _ => Format::Xml,
        }
    }

    pub fn of(params: &Params) -> Format {
        Format::from_param(params.get("response"))
    }

    pub fn content_type(self) -> &'static str {
        content_type(self == Format::Xml)
    }
}

pub fn content_type(xml: bool) -> &'static str {
    if xml { "text/xml; charset=UTF-8" } else { "application/json; charset=UTF-8" }
}

/// Renders `reply` in `format`.
pub fn render(format: Format, command: Option<&str>, reply: &Reply) -> String {
    match format {
        Format::Json => render_json(command, reply),
        Format::Xml => render_xml(command, reply),
    }
}

/// The wrapper name: `lower(command) + "response"`, or `errorresponse` for an error when the
/// command is unknown (`None` or empty) or the error is a 432.
pub fn response_name(command: Option<&str>, reply: &Reply) -> String {
    let unsupported = matches!(reply, Reply::Error(e) if e.code == ErrorCode::UnsupportedAction);
    match command {
        Some(c) if !c.is_empty() && !unsupported => format!("{}response", c.to_lowercase()),
        _ => ERROR_RESPONSE.to_owned(),
    }
}

/// `{"<name>response":{…}}`.
pub fn render_json(command: Option<&str>, reply: &Reply) -> String {
    let envelope = Envelope { name: response_name(command, reply), reply };
    // Serializing strings, numbers and maps with string keys into a String cannot fail.
    serde_json::to_string(&envelope).expect("JSON serialization of a reply")
}

struct Envelope<'a> {
    name: String,
    reply: &'a Reply,
}

impl Serialize for Envelope<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry(&self.name, &Body(self.reply))?;
        m.end()
    }
}

/// The object under the wrapper key.
struct Body<'a>(&'a Reply);

impl Serialize for Body<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        match self.0 {
            Reply::List { object, count, items } => {
                if *count != 0 {
                    m.serialize_entry("count", count)?;
                }
                // The list key is never sent as an empty array.
                if !items.is_empty() {
                    m.serialize_entry(object, &Items(items))?;
                }
            }
            Reply::Object { object, value } => m.serialize_entry(object, &NoNullsMap(value))?,
            Reply::Flat(map) => {
                for (k, v) in map {
                    if !v.is_null() {
                        m.serialize_entry(k, &NoNulls(v))?;
                    }
                }
            }
            Reply::Success { display_text } => {
                m.serialize_entry("success", &true)?;
                if let Some(t) = display_text {
                    m.serialize_entry("displaytext", t)?;
                }
            }
            Reply::AsyncJob { job_id, id } => {
                if let Some(id) = id {
                    m.serialize_entry("id", id)?;
                }
                m.serialize_entry("jobid", job_id)?;
            }
            Reply::Error(e) => {
                m.serialize_entry("uuidList", &[(); 0])?;
                m.serialize_entry("errorcode", &e.code.code())?;
                if let Some(cs) = e.cs_code {
                    m.serialize_entry("cserrorcode", &cs)?;
                }
                m.serialize_entry("errortext", &e.text)?;
            }
        }
        m.end()
    }
}

struct Items<'a>(&'a [Map<String, Value>]);

impl Serialize for Items<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for item in self.0 {
            seq.serialize_element(&NoNullsMap(item))?;
        }
        seq.end()
    }
}

/// A value written without its null fields or null array entries, at any depth.
struct NoNulls<'a>(&'a Value);

impl Serialize for NoNulls<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Object(map) => NoNullsMap(map).serialize(s),
            Value::Array(list) => {
                let mut seq = s.serialize_seq(None)?;
                for v in list.iter().filter(|v| !v.is_null()) {
                    seq.serialize_element(&NoNulls(v))?;
                }
                seq.end()
            }
            other => other.serialize(s),
        }
    }
}

struct NoNullsMap<'a>(&'a Map<String, Value>);

impl Serialize for NoNullsMap<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        for (k, v) in self.0.iter().filter(|(_, v)| !v.is_null()) {
            m.serialize_entry(k, &NoNulls(v))?;
        }
        m.end()
    }
}

/// `<?xml …?><name cloud-stack-version="…">…</name>`.
pub fn render_xml(command: Option<&str>, reply: &Reply) -> String {
    let response = response_name(command, reply);
    let name = xml_name(&response);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    out.push_str(&format!("<{name} cloud-stack-version=\"{CLOUDSTACK_VERSION}\">"));
    match reply {
        Reply::List { object, count, items } => {
            if *count != 0 {
                text_element(&mut out, "count", &count.to_string());
            }
            for item in items {
                object_element(&mut out, object, item);
            }
        }
        Reply::Object { object, value } => object_element(&mut out, object, value),
        Reply::Flat(map) => fields(&mut out, map),
        Reply::Success { display_text } => {
            text_element(&mut out, "success", "true");
            if let Some(t) = display_text {
                text_element(&mut out, "displaytext", t);
            }
        }
        Reply::AsyncJob { job_id, id } => {
            if let Some(id) = id {
                text_element(&mut out, "id", id);
            }
            text_element(&mut out, "jobid", job_id);
        }
        Reply::Error(e) => {
            text_element(&mut out, "errorcode", &e.code.code().to_string());
            if let Some(cs) = e.cs_code {
                text_element(&mut out, "cserrorcode", &cs.to_string());
            }
            text_element(&mut out, "errortext", &e.text);
        }
    }
    out.push_str(&format!("</{name}>"));
    out
}

fn fields(out: &mut String, map: &Map<String, Value>) {
    for (k, v) in map {
        field(out, k, v);
    }
}

/// One field. An array repeats the element once per entry (`<nic>…</nic><nic>…</nic>`).
fn field(out: &mut String, name: &str, value: &Value) {
    match value {
        Value::Null => {}
        Value::Bool(b) => text_element(out, name, if *b { "true" } else { "false" }),
        Value::Number(n) => text_element(out, name, &n.to_string()),
        Value::String(s) => text_element(out, name, s),
        Value::Object(map) => object_element(out, name, map),
        Value::Array(list) => {
            for v in list {
                field(out, name, v);
            }
        }
    }
}

fn object_element(out: &mut String, name: &str, map: &Map<String, Value>) {
    let name = xml_name(name);
    out.push('<');
    out.push_str(&name);
    out.push('>');
    fields(out, map);
    out.push_str("</");
    out.push_str(&name);
    out.push('>');
}

fn text_element(out: &mut String, name: &str, text: &str) {
    let name = xml_name(name);
    out.push('<');
    out.push_str(&name);
    out.push('>');
    escape_into(out, text);
    out.push_str("</");
    out.push_str(&name);
    out.push('>');
}

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 cannot carry other control characters at all, even escaped.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
}

/// Field names are normally plain identifiers; anything that would not be a valid element
/// name (a user-supplied detail key, say) is made into one rather than breaking the document.
fn xml_name(name: &str) -> std::borrow::Cow<'_, str> {
    let valid_start = |c: char| c.is_alphabetic() || c == '_';
    let valid = |c: char| c.is_alphanumeric() || matches!(c, '_' | '-' | '.');
    let mut chars = name.chars();
    match chars.next() {
        Some(first) if valid_start(first) && chars.all(valid) => name.into(),
        _ => {
            let mut fixed: String = name.chars().map(|c| if valid(c) { c } else { '_' }).collect();
            if !fixed.starts_with(valid_start) {
                fixed.insert(0, '_');
            }
            fixed.into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    const XML_HEAD: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>";

    fn zone() -> Map<String, Value> {
        obj(json!({
            "id": "3f6c",
            "name": "z1",
            "networktype": "Advanced",
            "allocationstate": "Enabled",
            "dns1": "8.8.8.8",
            "dns2": null,
            "internaldns1": "10.0.0.2",
            "localstorageenabled": false,
            "securitygroupsenabled": false
        }))
    }

    #[test]
    fn list_non_empty() {
        let r = Reply::List { object: "zone".into(), count: 1, items: vec![zone()] };
        assert_eq!(
            render_json(Some("listZones"), &r),
            r#"{"listzonesresponse":{"count":1,"zone":[{"id":"3f6c","name":"z1","networktype":"Advanced","allocationstate":"Enabled","dns1":"8.8.8.8","internaldns1":"10.0.0.2","localstorageenabled":false,"securitygroupsenabled":false}]}}"#
        );
        assert_eq!(
            render_xml(Some("listZones"), &r),
            format!(
                "{XML_HEAD}<listzonesresponse cloud-stack-version=\"4.20.0.0\"><count>1</count>\
                 <zone><id>3f6c</id><name>z1</name><networktype>Advanced</networktype>\
                 <allocationstate>Enabled</allocationstate><dns1>8.8.8.8</dns1>\
                 <internaldns1>10.0.0.2</internaldns1><localstorageenabled>false</localstorageenabled>\
                 <securitygroupsenabled>false</securitygroupsenabled></zone></listzonesresponse>"
            )
        );
        assert_eq!(r.http_status(), 200);
    }

    #[test]
    fn list_empty_and_past_the_end() {
        let empty = Reply::List { object: "virtualmachine".into(), count: 0, items: vec![] };
        assert_eq!(render_json(Some("listVirtualMachines"), &empty), r#"{"listvirtualmachinesresponse":{}}"#);
        assert_eq!(
            render_xml(Some("listVirtualMachines"), &empty),
            format!(
                "{XML_HEAD}<listvirtualmachinesresponse cloud-stack-version=\"4.20.0.0\">\
                 </listvirtualmachinesresponse>"
            )
        );
        let past = Reply::List { object: "zone".into(), count: 7, items: vec![] };
        assert_eq!(render_json(Some("listZones"), &past), r#"{"listzonesresponse":{"count":7}}"#);
        assert_eq!(
            render_xml(Some("listZones"), &past),
            format!(
                "{XML_HEAD}<listzonesresponse cloud-stack-version=\"4.20.0.0\"><count>7</count>\
                 </listzonesresponse>"
            )
        );
    }

    #[test]
    fn single_object_with_nested_collections() {
        let r = Reply::Object {
            object: "virtualmachine".into(),
            value: obj(json!({
                "id": "9a1e",
                "state": "Running",
                "password": null,
                "nic": [
                    {"id": "n1", "isdefault": true, "ipaddress": "10.1.1.23", "gateway": null},
                    {"id": "n2", "isdefault": false}
                ],
                "tags": [],
                "details": {"cpuNumber": "2"},
                "memory": 512,
                "cpuused": 1.5
            })),
        };
        assert_eq!(
            render_json(Some("updateVirtualMachine"), &r),
            r#"{"updatevirtualmachineresponse":{"virtualmachine":{"id":"9a1e","state":"Running","nic":[{"id":"n1","isdefault":true,"ipaddress":"10.1.1.23"},{"id":"n2","isdefault":false}],"tags":[],"details":{"cpuNumber":"2"},"memory":512,"cpuused":1.5}}}"#
        );
        assert_eq!(
            render_xml(Some("updateVirtualMachine"), &r),
            format!(
                "{XML_HEAD}<updatevirtualmachineresponse cloud-stack-version=\"4.20.0.0\">\
                 <virtualmachine><id>9a1e</id><state>Running</state>\
                 <nic><id>n1</id><isdefault>true</isdefault><ipaddress>10.1.1.23</ipaddress></nic>\
                 <nic><id>n2</id><isdefault>false</isdefault></nic>\
                 <details><cpuNumber>2</cpuNumber></details><memory>512</memory>\
                 <cpuused>1.5</cpuused></virtualmachine></updatevirtualmachineresponse>"
            )
        );
    }

    #[test]
    fn async_submit() {
        let r = Reply::AsyncJob { job_id: "77c2".into(), id: Some("9a1e".into()) };
        assert_eq!(
            render_json(Some("deployVirtualMachine"), &r),
            r#"{"deployvirtualmachineresponse":{"id":"9a1e","jobid":"77c2"}}"#
        );
        assert_eq!(
            render_xml(Some("deployVirtualMachine"), &r),
            format!(
                "{XML_HEAD}<deployvirtualmachineresponse cloud-stack-version=\"4.20.0.0\">\
                 <id>9a1e</id><jobid>77c2</jobid></deployvirtualmachineresponse>"
            )
        );
        let r = Reply::AsyncJob { job_id: "77c3".into(), id: None };
        assert_eq!(render_json(Some("startVirtualMachine"), &r), r#"{"startvirtualmachineresponse":{"jobid":"77c3"}}"#);
        assert_eq!(
            render_xml(Some("startVirtualMachine"), &r),
            format!(
                "{XML_HEAD}<startvirtualmachineresponse cloud-stack-version=\"4.20.0.0\">\
                 <jobid>77c3</jobid></startvirtualmachineresponse>"
            )
        );
    }

    #[test]
    fn query_async_job_result() {
        let pending = Reply::Flat(obj(json!({
            "accountid": "a1",
            "userid": "u1",
            "cmd": "org.apache.cloudstack.api.command.admin.vm.DeployVMCmdByAdmin",
            "jobstatus": 0,
            "jobprocstatus": 0,
            "jobresultcode": 0,
            "jobresulttype": null,
            "jobresult": null,
            "jobinstancetype": "VirtualMachine",
            "jobinstanceid": "9a1e",
            "created": "2024-05-01T10:20:30+0000",
            "jobid": "77c2"
        })));
        assert_eq!(
            render_json(Some("queryAsyncJobResult"), &pending),
            r#"{"queryasyncjobresultresponse":{"accountid":"a1","userid":"u1","cmd":"org.apache.cloudstack.api.command.admin.vm.DeployVMCmdByAdmin","jobstatus":0,"jobprocstatus":0,"jobresultcode":0,"jobinstancetype":"VirtualMachine","jobinstanceid":"9a1e","created":"2024-05-01T10:20:30+0000","jobid":"77c2"}}"#
        );

        let vm = Reply::Object {
            object: "virtualmachine".into(),
            value: obj(json!({
                "id": "9a1e",
                "state": "Running",
                "nic": [{"id": "n1", "isdefault": true}]
            })),
        };
        let done = Reply::Flat(obj(json!({
            "jobstatus": 1,
            "jobresultcode": 0,
            "jobresulttype": "object",
            "jobresult": vm.to_job_result(),
            "jobid": "77c2"
        })));
        assert_eq!(
            render_json(Some("queryAsyncJobResult"), &done),
            r#"{"queryasyncjobresultresponse":{"jobstatus":1,"jobresultcode":0,"jobresulttype":"object","jobresult":{"virtualmachine":{"id":"9a1e","state":"Running","nic":[{"id":"n1","isdefault":true}]}},"jobid":"77c2"}}"#
        );
        assert_eq!(
            render_xml(Some("queryAsyncJobResult"), &done),
            format!(
                "{XML_HEAD}<queryasyncjobresultresponse cloud-stack-version=\"4.20.0.0\">\
                 <jobstatus>1</jobstatus><jobresultcode>0</jobresultcode>\
                 <jobresulttype>object</jobresulttype><jobresult><virtualmachine><id>9a1e</id>\
                 <state>Running</state><nic><id>n1</id><isdefault>true</isdefault></nic>\
                 </virtualmachine></jobresult><jobid>77c2</jobid></queryasyncjobresultresponse>"
            )
        );

        let failure = Reply::Error(ApiError::insufficient_capacity("Unable to create a deployment for VM"));
        let failed = Reply::Flat(obj(json!({
            "jobstatus": 2,
            "jobresultcode": 533,
            "jobresulttype": "object",
            "jobresult": failure.to_job_result(),
            "jobid": "77c2"
        })));
        assert_eq!(
            render_json(Some("queryAsyncJobResult"), &failed),
            r#"{"queryasyncjobresultresponse":{"jobstatus":2,"jobresultcode":533,"jobresulttype":"object","jobresult":{"errorcode":533,"errortext":"Unable to create a deployment for VM"},"jobid":"77c2"}}"#
        );
        assert_eq!(
            Reply::Success { display_text: Some("done".into()) }.to_job_result(),
            json!({"success": true, "details": "done"})
        );
    }

    #[test]
    fn errors() {
        let e = Reply::Error(ApiError::missing_param("listtemplates", "templatefilter"));
        assert_eq!(
            render_json(Some("listTemplates"), &e),
            r#"{"listtemplatesresponse":{"uuidList":[],"errorcode":431,"cserrorcode":9999,"errortext":"Unable to execute API command listtemplates due to missing parameter templatefilter"}}"#
        );
        assert_eq!(
            render_xml(Some("listTemplates"), &e),
            format!(
                "{XML_HEAD}<listtemplatesresponse cloud-stack-version=\"4.20.0.0\">\
                 <errorcode>431</errorcode><cserrorcode>9999</cserrorcode><errortext>Unable to \
                 execute API command listtemplates due to missing parameter templatefilter\
                 </errortext></listtemplatesresponse>"
            )
        );
        assert_eq!(e.http_status(), 431);

        let e = Reply::from(ApiError::unauthorized());
        assert_eq!(
            render_json(Some("listZones"), &e),
            r#"{"listzonesresponse":{"uuidList":[],"errorcode":401,"errortext":"unable to verify user credentials and/or request signature"}}"#
        );
        assert_eq!(
            render_xml(Some("listZones"), &e),
            format!(
                "{XML_HEAD}<listzonesresponse cloud-stack-version=\"4.20.0.0\">\
                 <errorcode>401</errorcode><errortext>unable to verify user credentials and/or \
                 request signature</errortext></listzonesresponse>"
            )
        );

        // Unknown command, or a 432: `errorresponse`.
        let e = Reply::Error(ApiError::unauthorized());
        assert!(render_json(None, &e).starts_with(r#"{"errorresponse":{"uuidList":[],"#));
        assert!(render_json(Some(""), &e).starts_with(r#"{"errorresponse":"#));
        let e = Reply::Error(ApiError::unsupported("The given command does not exist"));
        assert_eq!(
            render_json(Some("fooBar"), &e),
            r#"{"errorresponse":{"uuidList":[],"errorcode":432,"cserrorcode":4555,"errortext":"The given command does not exist"}}"#
        );
        assert!(render_xml(Some("fooBar"), &e).contains("<errorresponse cloud-stack-version="));
    }

    #[test]
    fn success() {
        let r = Reply::Success { display_text: None };
        assert_eq!(render_json(Some("deleteSSHKeyPair"), &r), r#"{"deletesshkeypairresponse":{"success":true}}"#);
        assert_eq!(
            render_xml(Some("deleteSSHKeyPair"), &r),
            format!(
                "{XML_HEAD}<deletesshkeypairresponse cloud-stack-version=\"4.20.0.0\">\
                 <success>true</success></deletesshkeypairresponse>"
            )
        );
        let r = Reply::Success { display_text: Some("Zone deleted".into()) };
        assert_eq!(
            render_json(Some("deleteZone"), &r),
            r#"{"deletezoneresponse":{"success":true,"displaytext":"Zone deleted"}}"#
        );
        assert_eq!(
            render_xml(Some("deleteZone"), &r),
            format!(
                "{XML_HEAD}<deletezoneresponse cloud-stack-version=\"4.20.0.0\">\
                 <success>true</success><displaytext>Zone deleted</displaytext>\
                 </deletezoneresponse>"
            )
        );
    }

    #[test]
    fn flat_login_and_logout() {
        let r = Reply::Flat(obj(json!({
            "username": "admin",
            "timeout": 1800,
            "registered": "false",
            "sessionkey": "abc"
        })));
        assert_eq!(
            render_json(Some("login"), &r),
            r#"{"loginresponse":{"username":"admin","timeout":1800,"registered":"false","sessionkey":"abc"}}"#
        );
        assert_eq!(
            render_xml(Some("login"), &r),
            format!(
                "{XML_HEAD}<loginresponse cloud-stack-version=\"4.20.0.0\"><username>admin</username>\
                 <timeout>1800</timeout><registered>false</registered><sessionkey>abc</sessionkey>\
                 </loginresponse>"
            )
        );
        let r = Reply::Flat(obj(json!({"description": "success"})));
        assert_eq!(render_json(Some("logout"), &r), r#"{"logoutresponse":{"description":"success"}}"#);
        let e = Reply::Error(ApiError::login_failed());
        assert!(render_json(Some("login"), &e).starts_with(r#"{"loginresponse":{"uuidList":[],"errorcode":531,"#));
    }

    #[test]
    fn escaping() {
        let r = Reply::Object {
            object: "network".into(),
            value: obj(json!({
                "name": "a&b <c> \"d\" 'e' é/ü\u{1}",
                "details": {"bad key": "v", "1st": "w"}
            })),
        };
        assert_eq!(
            render_xml(Some("createNetwork"), &r),
            format!(
                "{XML_HEAD}<createnetworkresponse cloud-stack-version=\"4.20.0.0\"><network>\
                 <name>a&amp;b &lt;c&gt; &quot;d&quot; &apos;e&apos; é/ü</name>\
                 <details><bad_key>v</bad_key><_1st>w</_1st></details>\
                 </network></createnetworkresponse>"
            )
        );
        // JSON keeps non-ASCII and `/` raw, and escapes only what JSON must.
        assert_eq!(
            render_json(Some("createNetwork"), &r),
            "{\"createnetworkresponse\":{\"network\":{\"name\":\"a&b <c> \\\"d\\\" 'e' é/ü\\u0001\",\
             \"details\":{\"bad key\":\"v\",\"1st\":\"w\"}}}}"
        );
    }

    #[test]
    fn format_choice() {
        assert_eq!(Format::from_param(Some("json")), Format::Json);
        assert_eq!(Format::from_param(Some("JSON")), Format::Json);
        assert_eq!(Format::from_param(Some("xml")), Format::Xml);
        assert_eq!(Format::from_param(Some("yaml")), Format::Xml);
        assert_eq!(Format::from_param(None), Format::Xml);
        let p = Params::from_pairs(vec![("Response".into(), "Json".into())]);
        assert_eq!(Format::of(&p), Format::Json);
        assert_eq!(Format::Json.content_type(), "application/json; charset=UTF-8");
        assert_eq!(Format::Xml.content_type(), "text/xml; charset=UTF-8");
        assert_eq!(content_type(true), "text/xml; charset=UTF-8");
        let r = Reply::Success { display_text: None };
        assert_eq!(render(Format::Json, Some("x"), &r), render_json(Some("x"), &r));
        assert_eq!(render(Format::Xml, Some("x"), &r), render_xml(Some("x"), &r));
    }
}
