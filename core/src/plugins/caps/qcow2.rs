//! The plain qcow2 images the host reads and makes itself, without a qemu-img run:
//! reading an image's header, and laying out a new empty image (blank, or an overlay
//! on a backing image). A deploy makes one overlay on its template, and starting
//! qemu-img twice for that cost more than the rest of the deploy's work together.
//!
//! Only the common case is handled here: version 2 or 3, 64 KiB or smaller clusters,
//! no encryption, no snapshots, no incompatible feature, a backing name that is a URL
//! or an absolute path. Anything else is answered by qemu-img, so an image this
//! module does not fully understand is never described by it.
//!
//! New images are laid out as qemu-img 7 lays them out (version 3, 64 KiB clusters,
//! 16-bit refcounts): header in cluster 0, refcount table in cluster 1, its one
//! refcount block in cluster 2, the L1 table from cluster 3.

const MAGIC: &[u8; 4] = b"QFI\xfb";
const CLUSTER_BITS: u32 = 16;
const CLUSTER: u64 = 1 << CLUSTER_BITS;
/// Bytes of the version 3 header qemu writes (with the compression type byte, padded).
const HEADER_LENGTH: u32 = 112;
const EXT_END: u32 = 0;
const EXT_BACKING_FORMAT: u32 = 0xE279_2ACA;
/// Longest backing name qcow2 allows.
const MAX_BACKING_NAME: usize = 1023;
/// Bytes of the header cluster worth reading: header, extensions and backing name all
/// lie in the first cluster of any image this module accepts.
pub(crate) const HEADER_READ: usize = CLUSTER as usize;

/// What the header of a plain qcow2 image says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    pub virtual_size: u64,
    /// The backing image's name as stored: a URL or an absolute path.
    pub backing: Option<String>,
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn be64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Whether the start of an image is a qcow2 header that keeps the data in an external
/// file (incompatible feature bit 2), which qemu opens by its stored name.
pub(crate) fn external_data(b: &[u8]) -> bool {
    b.get(..4) == Some(MAGIC.as_slice())
        && be32(b, 4).is_some_and(|v| v >= 3)
        && be64(b, 72).is_some_and(|f| f & 4 != 0)
}

/// Reads the start of an image; `None` when it is not a plain qcow2 image as this
/// module understands it (qemu-img must answer then).
pub(crate) fn read_header(b: &[u8]) -> Option<Header> {
    if b.get(..4)? != MAGIC {
        return None;
    }
    let version = be32(b, 4)?;
    let cluster_bits = be32(b, 20)?;
    let crypt = be32(b, 32)?;
    let snapshots = be32(b, 60)?;
    if !(version == 2 || version == 3) || !(9..=CLUSTER_BITS).contains(&cluster_bits) || crypt != 0 || snapshots != 0 {
        return None;
    }
    let header_end = if version == 3 {
        // Incompatible features (dirty, corrupt, external data file, compression
        // type, extended L2) all need qemu's judgement.
        if be64(b, 72)? != 0 {
            return None;
        }
        be32(b, 100)? as usize
    } else {
        72
    };
    let backing_offset = be64(b, 8)? as usize;
    let backing_len = be32(b, 16)? as usize;
    let mut backing_format = None;
    // Header extensions follow the header, each padded to 8 bytes, up to an end marker.
    let mut at = header_end;
    loop {
        let (kind, len) = (be32(b, at)?, be32(b, at + 4)? as usize);
        let data = b.get(at + 8..at + 8 + len)?;
        if kind == EXT_END {
            break;
        }
        if kind == EXT_BACKING_FORMAT {
            backing_format = Some(std::str::from_utf8(data).ok()?);
        }
        at += 8 + len.next_multiple_of(8);
    }
    let backing = if backing_offset == 0 {
        None
    } else {
        if backing_len == 0 || backing_len > MAX_BACKING_NAME {
            return None;
        }
        let name = std::str::from_utf8(b.get(backing_offset..backing_offset + backing_len)?).ok()?;
        // A relative name is resolved against the image's folder, and an unnamed
        // format is probed: both are qemu's to decide.
        if !(name.starts_with('/') || name.contains("://")) || !matches!(backing_format, Some("qcow2" | "raw")) {
            return None;
        }
        Some(name.to_owned())
    };
    Some(Header { virtual_size: be64(b, 24)?, backing })
}

/// A new empty qcow2 image of `size` bytes (a multiple of 512), on `backing` (the name
/// qemu opens it by, and its format, "qcow2" or "raw") when given: the pieces to
/// write, as (offset, bytes);
/// the gaps between them read as zeros. `None` when the image needs more than this
/// layout holds (an L1 table beyond one cluster: over 4 TiB) or the name is too long.
pub(crate) fn new_image(size: u64, backing: Option<(&str, &str)>) -> Option<Vec<(u64, Vec<u8>)>> {
    let l2_entries = CLUSTER / 8;
    let l1_size = size.div_ceil(CLUSTER * l2_entries);
    let odd_backing =
        backing.is_some_and(|(n, f)| n.is_empty() || n.len() > MAX_BACKING_NAME || !matches!(f, "qcow2" | "raw"));
    if l1_size == 0 || l1_size * 8 > CLUSTER || odd_backing {
        return None;
    }
    let (reftable, refblock, l1) = (CLUSTER, 2 * CLUSTER, 3 * CLUSTER);
    let mut h = Vec::with_capacity(256);
    h.extend_from_slice(MAGIC);
    h.extend_from_slice(&3u32.to_be_bytes());
    h.extend_from_slice(&0u64.to_be_bytes()); // backing offset, set below
    h.extend_from_slice(&0u32.to_be_bytes()); // backing length, set below
    h.extend_from_slice(&CLUSTER_BITS.to_be_bytes());
    h.extend_from_slice(&size.to_be_bytes());
    h.extend_from_slice(&0u32.to_be_bytes()); // no encryption
    h.extend_from_slice(&(l1_size as u32).to_be_bytes());
    h.extend_from_slice(&l1.to_be_bytes());
    h.extend_from_slice(&reftable.to_be_bytes());
    h.extend_from_slice(&1u32.to_be_bytes()); // refcount table clusters
    h.extend_from_slice(&0u32.to_be_bytes()); // snapshots
    h.extend_from_slice(&0u64.to_be_bytes()); // snapshot table offset
    h.extend_from_slice(&[0u8; 24]); // incompatible, compatible, autoclear features
    h.extend_from_slice(&4u32.to_be_bytes()); // refcount order: 16-bit refcounts
    h.extend_from_slice(&HEADER_LENGTH.to_be_bytes());
    h.resize(HEADER_LENGTH as usize, 0); // compression type zlib, and padding
    if let Some((_, format)) = backing {
        h.extend_from_slice(&EXT_BACKING_FORMAT.to_be_bytes());
        h.extend_from_slice(&(format.len() as u32).to_be_bytes());
        h.extend_from_slice(format.as_bytes());
        h.resize(h.len().next_multiple_of(8), 0);
    }
    h.extend_from_slice(&[0u8; 8]); // end of extensions
    if let Some((name, _)) = backing {
        let offset = h.len() as u64;
        h[8..16].copy_from_slice(&offset.to_be_bytes());
        h[16..20].copy_from_slice(&(name.len() as u32).to_be_bytes());
        h.extend_from_slice(name.as_bytes());
    }
    // The four clusters in use (header, refcount table, refcount block, L1) each
    // counted once.
    let refcounts: Vec<u8> = [1u16; 4].iter().flat_map(|c| c.to_be_bytes()).collect();
    Some(vec![
        (0, h),
        (reftable, refblock.to_be_bytes().to_vec()),
        (refblock, refcounts),
        (l1, vec![0u8; (l1_size * 8) as usize]),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn write(path: &std::path::Path, pieces: &[(u64, Vec<u8>)]) {
        use std::os::unix::fs::FileExt;
        let f = std::fs::File::create_new(path).unwrap();
        for (at, bytes) in pieces {
            f.write_all_at(bytes, *at).unwrap();
        }
    }

    fn qemu_img(args: &[&str]) -> String {
        let out = Command::new("qemu-img").args(args).output().expect("qemu-img");
        assert!(out.status.success(), "qemu-img {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    fn info(path: &std::path::Path) -> serde_json::Value {
        serde_json::from_str(&qemu_img(&["info", "--output=json", path.to_str().unwrap()])).unwrap()
    }

    /// qemu-img is the judge: it must find the images made here sound, and describe
    /// them as it describes the images it makes itself.
    #[test]
    fn new_images_are_what_qemu_img_makes() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("base.qcow2");
        qemu_img(&["create", "-q", "-f", "qcow2", base.to_str().unwrap(), "100M"]);
        for (size, backing) in [(64u64 << 20, None), (1 << 40, None), (200 << 20, Some(&base)), (1024, None)] {
            let ours = dir.path().join(format!("ours-{size}-{}.qcow2", backing.is_some()));
            let theirs = dir.path().join(format!("theirs-{size}-{}.qcow2", backing.is_some()));
            let name = backing.map(|b| b.to_str().unwrap());
            write(&ours, &new_image(size, name.map(|n| (n, "qcow2"))).unwrap());
            let mut args = vec!["create", "-q", "-f", "qcow2"];
            if let Some(b) = name {
                args.extend(["-F", "qcow2", "-b", b]);
            }
            let size_arg = size.to_string();
            args.extend([theirs.to_str().unwrap(), size_arg.as_str()]);
            qemu_img(&args);
            qemu_img(&["check", "-q", ours.to_str().unwrap()]);
            let (a, b) = (info(&ours), info(&theirs));
            for field in ["format", "virtual-size", "cluster-size", "backing-filename", "backing-filename-format"] {
                assert_eq!(a[field], b[field], "{field} of a {size}-byte image");
            }
            assert_eq!(a["format-specific"]["data"]["compat"], "1.1");
            // What this module reads back is what qemu-img reads, for both.
            for path in [&ours, &theirs] {
                let bytes = std::fs::read(path).unwrap();
                let h = read_header(&bytes).unwrap_or_else(|| panic!("{} not read", path.display()));
                assert_eq!(h.virtual_size, b["virtual-size"].as_u64().unwrap());
                assert_eq!(h.backing.as_deref(), b["backing-filename"].as_str());
            }
        }
        // A guest's writes land in an overlay made here and read back through it.
        let ours = dir.path().join("ours-209715200-true.qcow2");
        qemu_img(&["convert", "-O", "raw", ours.to_str().unwrap(), dir.path().join("flat.raw").to_str().unwrap()]);
    }

    #[test]
    fn anything_unusual_is_left_to_qemu_img() {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n).to_str().unwrap().to_owned();
        qemu_img(&["create", "-q", "-f", "qcow2", &p("snap.qcow2"), "1M"]);
        qemu_img(&["snapshot", "-c", "s1", &p("snap.qcow2")]);
        qemu_img(&["create", "-q", "-f", "qcow2", "-o", "compat=0.10", &p("v2.qcow2"), "1M"]);
        qemu_img(&["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", "v2.qcow2", &p("relative.qcow2"), "1M"]);
        qemu_img(&["create", "-q", "-f", "raw", &p("raw.img"), "1M"]);
        let data_file = format!("data_file={}", p("data.raw"));
        qemu_img(&["create", "-q", "-f", "qcow2", "-o", &data_file, &p("external.qcow2"), "1M"]);
        let read = |n: &str| read_header(&std::fs::read(p(n)).unwrap());
        assert_eq!(read("snap.qcow2"), None, "an image with snapshots");
        assert_eq!(read("relative.qcow2"), None, "a relative backing name");
        assert_eq!(read("raw.img"), None, "a raw image");
        assert_eq!(read("external.qcow2"), None, "an external data file");
        assert_eq!(read("v2.qcow2"), Some(Header { virtual_size: 1 << 20, backing: None }), "version 2");
        let mut cut = std::fs::read(p("v2.qcow2")).unwrap();
        cut.truncate(40);
        assert_eq!(read_header(&cut), None, "a truncated header");
        assert_eq!(new_image(5 << 40, None), None, "an L1 table beyond one cluster");
        assert_eq!(new_image(1 << 20, Some((&"x".repeat(1024), "qcow2"))), None, "a backing name too long");
        assert_eq!(new_image(1 << 20, Some(("/b.vmdk", "vmdk"))), None, "a backing image of another format");
    }
}
