//! The source layout the crate docs describe, checked: two wings, streams
//! and scopes, over a floor of shared tools.
//!
//! * no two files of `src/` depend on each other, directly or through others;
//! * the floor (`sync`, `waitlist`, `wakeups`, `error`, `statistics`) uses
//!   neither wing;
//! * the scope wing knows nothing of streams;
//! * the stream wing sees of the scope wing only the facade `scope/mod.rs`,
//!   and of it only what a waiter needs.
//!
//! A file depends on another when its code (comments aside) names a path
//! into it: `crate::…`, `super::…`, or, in a `mod.rs`, a child module.
//! Unit-test modules are left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const FLOOR: [&str; 5] = ["error", "statistics", "sync", "waitlist", "wakeups"];

/// What the stream wing may name in `crate::scope`.
const SCOPE_SURFACE: [&str; 3] = ["ScopeRef", "ScopeWait", "current_is_cancelled"];

/// A module path (`["scope", "tree"]`; `[]` is the crate root).
type ModPath = Vec<String>;

struct File {
    module: ModPath,
    /// Child modules declared in it.
    children: BTreeSet<String>,
    /// Its code with comments removed.
    code: String,
}

fn module_of(src: &Path, file: &Path) -> ModPath {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: ModPath = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn without_comments(text: &str) -> String {
    text.lines()
        .map(|line| line.find("//").map_or(line, |at| &line[..at]))
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Every path in `code` that starts with `head::`, as its segments after
/// `head` (a `{…}` group gives one path per member; a glob or a group ends
/// the path).
fn paths_after(code: &str, head: &str) -> Vec<Vec<String>> {
    let needle = format!("{head}::");
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = code[from..].find(&needle) {
        let start = from + at;
        from = start + needle.len();
        let before = code[..start].chars().next_back();
        if before.is_some_and(|c| is_ident(c) || c == ':') {
            continue; // part of a longer path or name
        }
        out.extend(expand(&code[from..]));
    }
    out
}

/// The path at the start of `text`, one per member if it ends in a
/// `{…}` group (groups do not nest in this crate's source).
fn expand(text: &str) -> Vec<Vec<String>> {
    let mut segs = Vec::new();
    let mut rest = text;
    loop {
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            return group[..end]
                .split(',')
                .flat_map(|member| expand(member.trim()))
                .filter(|member| !member.is_empty())
                .map(|member| segs.iter().cloned().chain(member).collect())
                .collect();
        }
        let len = rest.find(|c: char| !is_ident(c)).unwrap_or(rest.len());
        if len == 0 {
            break;
        }
        segs.push(rest[..len].to_string());
        match rest[len..].strip_prefix("::") {
            Some(next) => rest = next,
            None => break,
        }
    }
    vec![segs]
}

struct Crate {
    files: BTreeMap<String, File>,
    modules: BTreeMap<ModPath, String>,
}

impl Crate {
    fn load() -> Crate {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut paths = Vec::new();
        rust_files(&src, &mut paths);
        let mut files = BTreeMap::new();
        let mut modules = BTreeMap::new();
        for path in paths {
            let name = path.strip_prefix(&src).unwrap().display().to_string();
            let mut code = without_comments(&std::fs::read_to_string(&path).unwrap());
            // A file's unit tests (an inline module at its end) are not part
            // of the layout, and their `super` is the file itself.
            if let Some(at) = code.find("#[cfg(test)]\nmod tests {") {
                code.truncate(at);
            }
            let children = code
                .lines()
                .filter_map(|line| {
                    let line = line.trim();
                    let decl = line
                        .strip_prefix("mod ")
                        .or_else(|| line.strip_prefix("pub mod "))
                        .or_else(|| line.strip_prefix("pub(crate) mod "))?;
                    decl.strip_suffix(';').map(str::to_string)
                })
                .collect();
            let module = module_of(&src, &path);
            modules.insert(module.clone(), name.clone());
            files.insert(
                name,
                File {
                    module,
                    children,
                    code,
                },
            );
        }
        Crate { files, modules }
    }

    /// The file a path from `base` leads into: the longest prefix that is a
    /// module of the crate.
    fn resolve(&self, base: &ModPath, path: &[String]) -> Option<&str> {
        let mut full = base.clone();
        full.extend(path.iter().cloned());
        (base.len()..=full.len())
            .rev()
            .find_map(|len| self.modules.get(&full[..len]))
            .map(String::as_str)
    }

    /// Each file's dependencies, with the names each path ends in.
    fn dependencies(&self) -> BTreeMap<&str, BTreeMap<&str, BTreeSet<String>>> {
        let mut deps = BTreeMap::new();
        for (name, file) in &self.files {
            let mut mine: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
            let parent: ModPath = file.module[..file.module.len().saturating_sub(1)].to_vec();
            let mut found = Vec::new();
            for path in paths_after(&file.code, "crate") {
                found.push((Vec::new(), path));
            }
            for path in paths_after(&file.code, "super") {
                found.push((parent.clone(), path));
            }
            for child in &file.children {
                for mut path in paths_after(&file.code, child) {
                    path.insert(0, child.clone());
                    found.push((file.module.clone(), path));
                }
            }
            for (base, path) in found {
                if let Some(target) = self.resolve(&base, &path) {
                    if target != name {
                        let leaf = path.last().cloned().unwrap_or_default();
                        mine.entry(target).or_default().insert(leaf);
                    }
                }
            }
            deps.insert(name.as_str(), mine);
        }
        deps
    }
}

fn wing(file: &str) -> Option<&str> {
    file.split_once('/').map(|(wing, _)| wing)
}

fn is_floor(file: &str) -> bool {
    FLOOR.iter().any(|f| file == format!("{f}.rs"))
}

#[test]
fn the_layout_has_two_wings_and_a_floor() {
    let krate = Crate::load();
    for file in [
        "lib.rs",
        "stream/mod.rs",
        "stream/chan.rs",
        "stream/handle.rs",
        "stream/send.rs",
        "stream/recv.rs",
        "stream/listen.rs",
        "stream/waiter.rs",
        "scope/mod.rs",
    ] {
        assert!(krate.files.contains_key(file), "src/{file} is missing");
    }
    for floor in FLOOR {
        assert!(krate.files.contains_key(&format!("{floor}.rs")));
    }
    for file in krate.files.keys() {
        assert!(
            file == "lib.rs" || is_floor(file) || wing(file).is_some(),
            "src/{file} is neither in a wing nor on the floor"
        );
    }
}

#[test]
fn no_file_depends_on_itself_through_others() {
    let krate = Crate::load();
    let deps = krate.dependencies();
    // Depth-first search for a back edge, reporting the cycle.
    fn visit<'a>(
        file: &'a str,
        deps: &BTreeMap<&'a str, BTreeMap<&'a str, BTreeSet<String>>>,
        stack: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) {
        if let Some(at) = stack.iter().position(|f| *f == file) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(file);
            panic!("import cycle: {}", cycle.join(" -> "));
        }
        if !done.insert(file) {
            return;
        }
        stack.push(file);
        for next in deps[file].keys() {
            visit(next, deps, stack, done);
        }
        stack.pop();
    }
    let mut done = BTreeSet::new();
    for file in deps.keys() {
        visit(file, &deps, &mut Vec::new(), &mut done);
    }
}

#[test]
fn the_floor_uses_neither_wing_and_the_scope_wing_knows_no_stream() {
    let krate = Crate::load();
    for (file, targets) in krate.dependencies() {
        for target in targets.keys() {
            if is_floor(file) {
                assert!(
                    is_floor(target),
                    "the floor's src/{file} depends on src/{target}"
                );
            }
            if wing(file) == Some("scope") {
                assert_ne!(
                    wing(target),
                    Some("stream"),
                    "the scope wing's src/{file} depends on src/{target}"
                );
            }
        }
    }
}

#[test]
fn the_stream_wing_sees_only_a_waiters_view_of_scopes() {
    let krate = Crate::load();
    for (file, targets) in krate.dependencies() {
        if wing(file) != Some("stream") {
            continue;
        }
        for (target, names) in targets {
            if wing(target) != Some("scope") {
                continue;
            }
            assert_eq!(
                target, "scope/mod.rs",
                "src/{file} reaches into src/{target}"
            );
            for name in names {
                assert!(
                    SCOPE_SURFACE.contains(&name.as_str()),
                    "src/{file} uses crate::scope::{name}, outside {SCOPE_SURFACE:?}"
                );
            }
        }
    }
}

#[test]
fn the_dependency_scan_sees_paths() {
    // The scan itself: a test of the tests above, on known text.
    let code = "use crate::scope::{ScopeRef, wait::ScopeWait};\nlet x = super::clock::now();";
    assert_eq!(
        paths_after(code, "crate"),
        [
            vec!["scope", "ScopeRef"],
            vec!["scope", "wait", "ScopeWait"]
        ]
    );
    assert_eq!(paths_after(code, "super"), [vec!["clock", "now"]]);
    assert_eq!(without_comments("a // crate::x"), "a ");
    let krate = Crate::load();
    let deps = krate.dependencies();
    assert!(deps["stream/chan.rs"].contains_key("wakeups.rs"));
    assert!(deps["scope/tree.rs"].contains_key("scope/clock.rs"));
    assert!(deps["scope/mod.rs"].contains_key("scope/tree.rs"));
}

/// The stream wing, one concept per file: none grows past 500 lines.
#[test]
fn no_file_of_the_stream_wing_is_over_500_lines() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/stream");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    for file in files {
        let lines = std::fs::read_to_string(&file).unwrap().lines().count();
        assert!(lines <= 500, "{} has {lines} lines", file.display());
    }
}
