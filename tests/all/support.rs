//! Helpers shared by the tests: where the built components are, and a scratch plugin
//! folder with a configuration.

use std::path::{Path, PathBuf};

use wasmstack::plugins::{HostConfig, PluginHost};

/// Folder holding the built `.wasm` components: `WASMSTACK_WASM_DIR`, or the
/// `wasm32-wasip2/release` folder of the cargo target dir this test was built in.
pub fn wasm_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("WASMSTACK_WASM_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // <target>/release/deps/all-<hash>
    let target = exe.ancestors().nth(3).expect("cargo target dir");
    target.join("wasm32-wasip2/release")
}

/// A built component, by file name.
pub fn wasm(name: &str) -> PathBuf {
    let path = wasm_dir().join(name);
    assert!(path.is_file(), "{} is missing; build the components first with scripts/build.sh", path.display());
    path
}

/// A scratch folder with a `plugins/` folder and a server configuration.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("scratch folder");
        std::fs::create_dir(dir.path().join("plugins")).expect("plugin folder");
        Sandbox { dir }
    }

    pub fn plugins(&self) -> PathBuf {
        self.dir.path().join("plugins")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("wasmstack.toml")
    }

    /// Copies a built component into the plugin folder under `as_name`, atomically
    /// (write aside, then rename) as an operator's deploy tool would.
    pub fn install(&self, artifact: &str, as_name: &str) -> PathBuf {
        let dest = self.plugins().join(as_name);
        install_file(&wasm(artifact), &dest);
        dest
    }

    /// Writes the configuration and builds a host on it (nothing loaded yet).
    pub fn host(&self, config: &str) -> PluginHost {
        std::fs::write(self.config_path(), config).expect("writing the configuration");
        let cfg = HostConfig::load(&self.config_path()).expect("a valid configuration");
        PluginHost::new(cfg).expect("a plugin host")
    }
}

pub fn install_file(src: &Path, dest: &Path) {
    let tmp = dest.with_extension("partial");
    std::fs::copy(src, &tmp).expect("copying a component");
    std::fs::rename(&tmp, dest).expect("renaming into place");
}

/// A random lowercase UUID, from the kernel.
pub fn new_uuid() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/uuid").expect("kernel uuid").trim().to_owned()
}
