//! The few lookups the driver makes in XML that libvirt wrote (capabilities and domain
//! XML). libvirt's output is regular, so scanning start tags is enough; no XML crate.

/// A start (or empty-element) tag found in a document.
struct Tag<'a> {
    /// Byte offset of its '<'.
    start: usize,
    /// Byte offset just past its '>'.
    end: usize,
    /// The text between the name and the closing '>' or '/>'.
    attrs: &'a str,
    /// Whether it closes itself ("<x/>").
    empty: bool,
}

/// Every start tag named `name`, in document order.
fn tags<'a>(xml: &'a str, name: &'a str) -> impl Iterator<Item = Tag<'a>> + 'a {
    let mut from = 0;
    std::iter::from_fn(move || {
        loop {
            let rel = xml[from..].find('<')?;
            let start = from + rel;
            let after = &xml[start + 1..];
            from = start + 1;
            let Some(rest) = after.strip_prefix(name) else {
                continue;
            };
            // "<disk" must not match "<diskx"; the name ends at whitespace, '/' or '>'.
            if !rest.starts_with(|c: char| c.is_whitespace() || c == '/' || c == '>') {
                continue;
            }
            let close = tag_end(rest)?;
            let inner = &rest[..close];
            let empty = inner.ends_with('/');
            let end = start + 1 + name.len() + close + 1;
            from = end;
            return Some(Tag { start, end, attrs: inner.strip_suffix('/').unwrap_or(inner), empty });
        }
    })
}

/// Offset of the '>' ending a tag, skipping '>' inside quoted attribute values.
fn tag_end(text: &str) -> Option<usize> {
    let mut quote = None;
    for (i, c) in text.char_indices() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            (None, '>') => return Some(i),
            _ => {}
        }
    }
    None
}

/// The unescaped value of attribute `name` in a tag's attribute text.
fn attr(attrs: &str, name: &str) -> Option<String> {
    let mut rest = attrs;
    loop {
        rest = rest.trim_start();
        let eq = rest.find('=')?;
        let key = rest[..eq].trim();
        let value_part = rest[eq + 1..].trim_start();
        let quote = value_part.chars().next()?;
        if quote != '\'' && quote != '"' {
            return None;
        }
        let close = value_part[1..].find(quote)?;
        let value = &value_part[1..1 + close];
        if key == name {
            return Some(unescape(value));
        }
        rest = &value_part[close + 2..];
    }
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<").replace("&gt;", ">").replace("&apos;", "'").replace("&quot;", "\"").replace("&amp;", "&")
}

/// Whether a capabilities document offers KVM guests (`<domain type='kvm'/>` under a guest).
pub fn offers_kvm(capabilities: &str) -> bool {
    tags(capabilities, "domain").any(|t| attr(t.attrs, "type").as_deref() == Some("kvm"))
}

/// Where a domain's VNC display listens, from its live XML.
pub struct Vnc {
    /// Listen address, when the XML names one.
    pub listen: Option<String>,
    /// TCP port; none while libvirt has not assigned one.
    pub port: Option<u16>,
}

/// The first VNC display in a domain XML, if any.
pub fn vnc(domain_xml: &str) -> Option<Vnc> {
    let graphics = tags(domain_xml, "graphics").find(|t| attr(t.attrs, "type").as_deref() == Some("vnc"))?;
    let port = attr(graphics.attrs, "port")
        .and_then(|p| p.parse::<i32>().ok())
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p > 0);
    let mut listen = attr(graphics.attrs, "listen");
    if listen.is_none() && !graphics.empty {
        // Newer XML may only carry the address in a <listen> child.
        let body_end = domain_xml[graphics.end..].find("</graphics>").map_or(domain_xml.len(), |i| graphics.end + i);
        listen = tags(&domain_xml[graphics.end..body_end], "listen").find_map(|t| attr(t.attrs, "address"));
    }
    Some(Vnc { listen, port })
}

/// The whole `<disk>…</disk>` element whose target is `dev`, as it appears in the XML.
pub fn disk_element<'a>(domain_xml: &'a str, dev: &str) -> Option<&'a str> {
    tags(domain_xml, "disk").find_map(|disk| {
        if disk.empty {
            return None;
        }
        let close = domain_xml[disk.end..].find("</disk>")?;
        let end = disk.end + close + "</disk>".len();
        let body = &domain_xml[disk.end..end];
        tags(body, "target").any(|t| attr(t.attrs, "dev").as_deref() == Some(dev)).then(|| &domain_xml[disk.start..end])
    })
}

/// The text of the first `<name>` element (a domain's name).
pub fn domain_name(domain_xml: &str) -> Option<String> {
    let tag = tags(domain_xml, "name").next()?;
    let close = domain_xml[tag.end..].find("</name>")?;
    Some(unescape(domain_xml[tag.end..tag.end + close].trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIVE: &str = "<domain type='qemu' id='4'>
  <name>i-2-3-VM</name>
  <uuid>3f1c2a8e-5b7d-4e21-9c0a-1d2e3f4a5b6c</uuid>
  <devices>
    <disk type='network' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source protocol='nfs' name='/export/v1.qcow2' index='2'>
        <host name='127.0.0.1'/>
      </source>
      <backingStore type='network' index='3'>
        <format type='qcow2'/>
        <source protocol='nfs' name='/export/t.qcow2'/>
        <backingStore/>
      </backingStore>
      <target dev='vda' bus='virtio'/>
      <alias name='virtio-disk0'/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <target dev='hdc' bus='ide'/>
      <readonly/>
    </disk>
    <diskette/>
    <graphics type='spice' port='5901'/>
    <graphics type='vnc' port='5900' autoport='yes' listen='10.0.0.7'>
      <listen type='address' address='10.0.0.7'/>
    </graphics>
  </devices>
</domain>";

    #[test]
    fn finds_disks_by_target() {
        let vda = disk_element(LIVE, "vda").unwrap();
        assert!(vda.starts_with("<disk type='network'"));
        assert!(vda.ends_with("</disk>"));
        assert!(vda.contains("<backingStore/>"));
        let hdc = disk_element(LIVE, "hdc").unwrap();
        assert!(hdc.starts_with("<disk type='file' device='cdrom'>"));
        assert!(!hdc.contains("vda"));
        assert!(disk_element(LIVE, "vdb").is_none());
        assert!(disk_element(LIVE, "vd").is_none());
    }

    #[test]
    fn finds_vnc() {
        let v = vnc(LIVE).unwrap();
        assert_eq!(v.port, Some(5900));
        assert_eq!(v.listen.as_deref(), Some("10.0.0.7"));
        assert!(vnc("<domain><devices/></domain>").is_none());
    }

    #[test]
    fn vnc_listen_child_and_unassigned_port() {
        let xml = "<graphics type=\"vnc\" port=\"-1\">\n<listen type=\"address\" address=\"::1\"/>\n</graphics>";
        let v = vnc(xml).unwrap();
        assert_eq!(v.port, None);
        assert_eq!(v.listen.as_deref(), Some("::1"));
    }

    #[test]
    fn kvm_offer() {
        let caps = "<capabilities><guest><os_type>hvm</os_type><arch name='x86_64'>\
                    <domain type='qemu'/><domain type='kvm'/></arch></guest></capabilities>";
        assert!(offers_kvm(caps));
        assert!(!offers_kvm(&caps.replace("'kvm'", "'test'")));
    }

    #[test]
    fn attributes_and_names() {
        assert_eq!(attr(" a='1' b=\"x&amp;y\" c='>'", "b").as_deref(), Some("x&y"));
        assert_eq!(attr(" a='1'", "c"), None);
        assert_eq!(domain_name(LIVE).as_deref(), Some("i-2-3-VM"));
        // A '>' inside a quoted value does not end the tag.
        let t = tags("<x v='a>b'/>", "x").next().unwrap();
        assert!(t.empty);
        assert_eq!(attr(t.attrs, "v").as_deref(), Some("a>b"));
    }
}
