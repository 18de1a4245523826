//! Every string the console shows, in English and Simplified Chinese.

use leptos::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Zh,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh",
        }
    }

    /// "zh", "zh-CN", "zh_Hans"… are Chinese; anything else is English.
    pub fn from_code(code: &str) -> Lang {
        if code.to_ascii_lowercase().starts_with("zh") { Lang::Zh } else { Lang::En }
    }
}

/// (key, English, Chinese). A linear scan: the table is small and lookups are rare.
const TABLE: &[(&str, &str, &str)] = &[
    ("login.title", "Log in", "登录"),
    ("login.username", "Username", "用户名"),
    ("login.password", "Password", "密码"),
    ("login.domain", "Domain", "域"),
    ("login.domain_hint", "/ for ROOT", "/ 表示根域"),
    ("login.submit", "Log in", "登录"),
    ("login.busy", "Logging in…", "正在登录…"),
    ("pw.title", "Choose a new password", "设置新密码"),
    (
        "pw.why",
        "You are logged in with the generated first password; choose your own to go on.",
        "您正在使用系统生成的初始密码登录，请设置自己的密码后继续。",
    ),
    ("pw.current", "Current password", "当前密码"),
    ("pw.new", "New password", "新密码"),
    ("pw.again", "New password again", "再次输入新密码"),
    ("pw.mismatch", "The two passwords differ.", "两次输入的密码不一致。"),
    ("pw.submit", "Change password", "修改密码"),
    ("nav.dashboard", "Dashboard", "仪表板"),
    ("nav.instances", "Instances", "实例"),
    ("nav.deploy", "Deploy", "创建实例"),
    ("nav.logout", "Log out", "退出"),
    ("nav.language", "Language", "语言"),
    ("common.loading", "Loading…", "加载中…"),
    ("common.refresh", "Refresh", "刷新"),
    ("common.none", "None", "无"),
    ("common.back", "Back", "上一步"),
    ("common.next", "Next", "下一步"),
    ("common.error", "Error", "错误"),
    ("common.session_ended", "Your session has ended; please log in again.", "会话已结束，请重新登录。"),
    ("dash.title", "Dashboard", "仪表板"),
    ("dash.zone", "Zone", "区域"),
    ("dash.zones", "Zones", "区域"),
    ("dash.network_type", "Network type", "网络类型"),
    ("dash.allocation", "Allocation", "分配状态"),
    ("dash.hosts", "Hosts", "主机"),
    ("dash.instances", "Instances", "实例"),
    ("dash.running", "Running", "运行中"),
    ("dash.total", "Total", "合计"),
    ("dash.no_zones", "No zones yet.", "尚无区域。"),
    ("vm.title", "Instances", "实例"),
    ("vm.search", "Search", "搜索"),
    ("vm.search_placeholder", "Name or keyword", "名称或关键字"),
    ("vm.all_states", "All states", "全部状态"),
    ("vm.name", "Name", "名称"),
    ("vm.state", "State", "状态"),
    ("vm.zone", "Zone", "区域"),
    ("vm.template", "Template", "模板"),
    ("vm.offering", "Offering", "计算方案"),
    ("vm.ip", "IP address", "IP 地址"),
    ("vm.host", "Host", "主机"),
    ("vm.actions", "Actions", "操作"),
    ("vm.start", "Start", "启动"),
    ("vm.stop", "Stop", "停止"),
    ("vm.reboot", "Reboot", "重启"),
    ("vm.destroy", "Destroy", "销毁"),
    ("vm.confirm_destroy", "Destroy this instance?", "确定销毁此实例？"),
    ("vm.none", "No instances.", "没有实例。"),
    ("vm.count", "{0} instances", "共 {0} 个实例"),
    ("vm.page_of", "Page {0} of {1}", "第 {0} 页，共 {1} 页"),
    ("vm.prev", "Previous", "上一页"),
    ("vm.next", "Next", "下一页"),
    ("job.running", "Running…", "执行中…"),
    ("job.done", "Done", "完成"),
    ("job.failed", "Failed", "失败"),
    ("deploy.title", "Deploy an instance", "创建实例"),
    ("deploy.zone", "Zone", "区域"),
    ("deploy.template", "Template", "模板"),
    ("deploy.offering", "Compute offering", "计算方案"),
    ("deploy.network", "Network", "网络"),
    ("deploy.name", "Name", "名称"),
    ("deploy.review", "Review", "确认"),
    ("deploy.launch", "Launch", "启动实例"),
    ("deploy.no_network", "No network (the zone's default)", "不指定网络（区域默认）"),
    ("deploy.empty", "Nothing to choose from here yet.", "此处暂无可选项。"),
    ("deploy.name_hint", "Letters, digits and hyphens", "字母、数字和连字符"),
    ("deploy.launching", "Deploying…", "正在创建…"),
    ("deploy.watching", "Waiting for Running…", "等待运行…"),
    ("deploy.running", "The instance is running.", "实例已运行。"),
    ("deploy.another", "Deploy another", "再创建一个"),
    ("deploy.to_list", "Go to instances", "查看实例"),
    ("state.Running", "Running", "运行中"),
    ("state.Stopped", "Stopped", "已停止"),
    ("state.Starting", "Starting", "启动中"),
    ("state.Stopping", "Stopping", "停止中"),
    ("state.Destroyed", "Destroyed", "已销毁"),
    ("state.Expunging", "Expunging", "清除中"),
    ("state.Error", "Error", "错误"),
    ("state.Migrating", "Migrating", "迁移中"),
];

/// The shared table, then each page module's own (kept there so pages can be added apart).
const TABLES: &[&[(&str, &str, &str)]] = &[
    TABLE,
    crate::accounts::STRINGS,
    crate::events::STRINGS,
    crate::instances::STRINGS,
    crate::keypairs::STRINGS,
    crate::userdata::STRINGS,
    crate::deploy::STRINGS,
    crate::overview::STRINGS,
    crate::plugins::STRINGS,
    crate::infra::STRINGS,
    crate::zone_wizard::STRINGS,
    crate::driver_form::STRINGS,
    crate::infra_forms::STRINGS,
    crate::templates::STRINGS,
    crate::networks::STRINGS,
    crate::public_ips::STRINGS,
    crate::offerings::STRINGS,
    crate::volumes::STRINGS,
];

fn find(key: &str) -> Option<&'static (&'static str, &'static str, &'static str)> {
    TABLES.iter().flat_map(|t| t.iter()).find(|(k, _, _)| *k == key)
}

/// The text for `key` in `lang`; the key itself when missing, so a gap shows rather than hides.
pub fn text(lang: Lang, key: &str) -> &str {
    match find(key) {
        Some((_, en, zh)) => match lang {
            Lang::En => en,
            Lang::Zh => zh,
        },
        None => key,
    }
}

/// The language chosen for this console, shared through the context.
#[derive(Clone, Copy)]
pub struct I18n(pub RwSignal<Lang>);

/// A reactive text: re-reads the language each time it is shown.
pub fn tr(key: &'static str) -> impl Fn() -> &'static str + Copy + Send + Sync + 'static {
    let lang = expect_context::<I18n>().0;
    move || text(lang.get(), key)
}

/// `text` with `{0}`, `{1}`… replaced by `args`.
pub fn fill(lang: Lang, key: &str, args: &[&dyn std::fmt::Display]) -> String {
    let mut out = text(lang, key).to_owned();
    for (i, a) in args.iter().enumerate() {
        out = out.replace(&format!("{{{i}}}"), &a.to_string());
    }
    out
}

/// The same for keys made at run time (VM states); unknown ones show as they are.
pub fn tr_dyn(lang: Lang, key_prefix: &str, value: &str) -> String {
    let key = format!("{key_prefix}{value}");
    match find(&key) {
        Some(_) => text(lang, &key).to_owned(),
        None => value.to_owned(),
    }
}

const LANG_ITEM: &str = "wasmstack.lang";

/// The language the user picked before, if any (it beats the branding's default).
pub fn saved_lang() -> Option<Lang> {
    let s = web_sys::window()?.local_storage().ok().flatten()?;
    s.get_item(LANG_ITEM).ok().flatten().map(|c| Lang::from_code(&c))
}

pub fn save_lang(lang: Lang) {
    if let Some(s) = web_sys::window().and_then(|w| w.local_storage().ok().flatten()) {
        let _ = s.set_item(LANG_ITEM, lang.code());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_once() {
        let mut keys: Vec<_> = TABLES.iter().flat_map(|t| t.iter()).map(|(k, _, _)| *k).collect();
        keys.sort_unstable();
        let n = keys.len();
        keys.dedup();
        assert_eq!(keys.len(), n, "a key appears twice");
    }

    #[test]
    fn lookups() {
        assert_eq!(text(Lang::Zh, "nav.instances"), "实例");
        assert_eq!(text(Lang::En, "nav.instances"), "Instances");
        assert_eq!(text(Lang::En, "no.such"), "no.such");
        assert_eq!(fill(Lang::Zh, "vm.page_of", &[&1, &3]), "第 1 页，共 3 页");
        assert_eq!(Lang::from_code("zh-CN"), Lang::Zh);
        assert_eq!(Lang::from_code("en-US"), Lang::En);
    }
}
