//! `fleet test [FILTER]`: every public function of the project's `tests/*.rhai` is a
//! test that receives fresh hosts, one throwaway Docker container per parameter. The
//! tests run as one normal run over SSH (same transport, logs, recap and exit code as
//! any recipe), kept apart from the fleet's own: `fleet test` has its own lock, logs and
//! journal under `.fleet/test/`, so it never holds the project's lock against a cron
//! run and its throwaway hosts never show up in `fleet history`.

use crate::App;
use crate::error::{Error, Result};
use crate::exec::current;
use crate::ops::testhost::{self, Docker, DockerError, TestHost};
use crate::outcome::{Ending, HostStatus, Stop, exit_code};
use crate::recipe::check::Problem;
use crate::recipe::diagnostic::{Cause, locate};
use crate::script::host::HostRef;
use crate::session::{RunRequest, finish_run, start_run};
use rhai::{AST, CallFnOptions, Dynamic, FnAccess, Scope};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Hosts one test may ask for (one container each).
const MAX_HOSTS: usize = 4;
/// Containers started at once.
const START_AT_ONCE: usize = 4;

/// What `fleet test` was asked.
pub(crate) struct TestArgs {
    pub(crate) filter: Option<String>,
    pub(crate) keep: bool,
    pub(crate) build_image: bool,
    pub(crate) image: Option<String>,
}

/// One test: a public function of a tests file.
struct Test {
    name: String,
    file: String,
    ast: Arc<AST>,
    /// Its hosts' inventory names: the test's name, or `name-1`… for several.
    hosts: Vec<String>,
    /// Their inventory vars, from the doc comment's `/// @vars { … }` (TOML).
    vars: toml::Table,
}

/// How a test ended.
enum Verdict {
    Passed,
    Failed(String),
    Interrupted,
}

/// The vars of a test's `/// @vars { key = value, … }` doc line (an inline TOML table,
/// as `vars = { … }` in inventory.toml), empty without one.
fn vars_of(file: &str, test: &str, comments: &[&str]) -> Result<toml::Table> {
    let mut vars = toml::Table::new();
    for line in comments.iter().flat_map(|c| c.lines()) {
        let text = line.trim().trim_start_matches('/').trim();
        let Some(table) = text.strip_prefix("@vars") else {
            continue;
        };
        let parsed: toml::Table = toml::from_str(&format!("vars = {}", table.trim()))
            .map_err(|e| {
                Error::usage_with_help(
                    format!("{file}: @vars of test `{test}` is not a TOML inline table: {}", e.message()),
                    "write it as in inventory.toml: /// @vars { apps = [\"web-stack\"], ssh = { port = 22 } }",
                )
            })?;
        if let Some(toml::Value::Table(t)) = parsed.get("vars") {
            vars.extend(t.clone());
        } else {
            return Err(Error::usage(format!(
                "{file}: @vars of test `{test}` must be a table: {{ key = value, … }}"
            )));
        }
    }
    Ok(vars)
}

fn docker_error(e: DockerError) -> Error {
    match e.help() {
        Some(help) => Error::usage_with_help(e.to_string(), help),
        None => Error::usage(e.to_string()),
    }
}

/// The tests of `tests/*.rhai` (sorted by file, then name) that `filter` selects, and
/// how many tests there are in all.
fn discover(app: &App, filter: Option<&str>) -> Result<(Vec<Test>, usize)> {
    let dir = app.project.root.join("tests");
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "rhai") && p.is_file())
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    let mut tests: Vec<Test> = Vec::new();
    for path in files {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name = format!("tests/{stem}.rhai");
        let text = std::fs::read_to_string(&path).map_err(Error::read(&path))?;
        app.scripting.ctx.sources.insert(&name, &text);
        let mut ast = app.scripting.engine.compile(&text).map_err(|e| {
            Problem::new(
                "syntax",
                &name,
                format!("syntax error in {name}: {}", e.err_type()),
            )
            .at(e.position())
            .to_error(&app.scripting.ctx.sources)
        })?;
        ast.set_source(name.as_str());
        let ast = Arc::new(ast);
        let mut found: Vec<(String, usize, Result<toml::Table>)> = ast
            .iter_functions()
            .filter(|f| {
                f.access == FnAccess::Public
                    && f.this_type.is_none()
                    && !f.name.starts_with("anon$")
                    && !f.name.starts_with('_')
            })
            .map(|f| {
                let vars = vars_of(&name, f.name, &f.comments);
                (f.name.to_string(), f.params.len(), vars)
            })
            .collect();
        found.sort_by(|a, b| a.0.cmp(&b.0));
        for (test, arity, vars) in found {
            let vars = vars?;
            if !(1..=MAX_HOSTS).contains(&arity) {
                return Err(Error::usage_with_help(
                    format!(
                        "{name}: test `{test}` takes {arity} parameters; a test receives 1 to {MAX_HOSTS} hosts"
                    ),
                    format!(
                        "write it as `fn {test}(h) {{ … }}`, or make it private (`private fn` or a name starting with `_`) if it is a helper"
                    ),
                ));
            }
            if let Some(other) = tests.iter().find(|t| t.name == test) {
                return Err(Error::usage(format!(
                    "test `{test}` is defined in {} and in {name}; give each its own name",
                    other.file
                )));
            }
            let selected = filter.is_none_or(|f| test.contains(f) || stem.contains(f));
            let hosts = if arity == 1 {
                vec![test.clone()]
            } else {
                (1..=arity).map(|i| format!("{test}-{i}")).collect()
            };
            let t = Test {
                name: test,
                file: name.clone(),
                ast: ast.clone(),
                hosts,
                vars,
            };
            if selected {
                tests.push(t);
            } else {
                // Kept out, but still checked for clashes with the selected ones.
                tests.push(Test { hosts: vec![], ..t });
            }
        }
    }
    let all = tests.len();
    tests.retain(|t| !t.hosts.is_empty());
    Ok((tests, all))
}

/// The image to run: `--image`, else `FLEET_TEST_IMAGE`, else fleet's own (built when
/// missing or asked to).
fn image(app_dir: &Path, args: &TestArgs, docker: &Docker) -> Result<String> {
    let given = args.image.clone().or_else(|| {
        std::env::var("FLEET_TEST_IMAGE")
            .ok()
            .filter(|v| !v.is_empty())
    });
    if let Some(tag) = given {
        if args.build_image {
            return Err(Error::usage(
                "--build-image builds fleet's own image; leave out --image (and FLEET_TEST_IMAGE)",
            ));
        }
        if !docker.image_exists(&tag).map_err(docker_error)? {
            return Err(Error::usage_with_help(
                format!("the test image `{tag}` does not exist in Docker"),
                "leave out --image (and FLEET_TEST_IMAGE) to use fleet's own, built once with debootstrap",
            ));
        }
        return Ok(tag);
    }
    let tag = testhost::image_tag();
    if args.build_image || !docker.image_exists(&tag).map_err(docker_error)? {
        docker.build_image(&tag, app_dir).map_err(docker_error)?;
    }
    Ok(tag)
}

/// Removes the run's containers (but the kept ones) and its scratch directory (unless
/// a container is kept: its key and inventory are in it), however the run ends.
struct Cleanup {
    docker: Docker,
    owner: String,
    scratch: PathBuf,
    keep: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Err(e) = self.docker.remove_owned(&self.owner, &self.keep) {
            eprintln!(
                "warning: the containers of this test run may be left: {e}; `docker ps -a --filter label={}={}` lists them",
                testhost::LABEL,
                self.owner
            );
        }
        if self.keep.is_empty() {
            let _ = std::fs::remove_dir_all(&self.scratch);
        }
    }
}

fn private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).map_err(Error::write(dir))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(Error::write(dir))
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(Error::write(path))?;
    f.write_all(text.as_bytes()).map_err(Error::write(path))
}

/// The throwaway project in `scratch` that reaches the containers: inventory, strict
/// known_hosts and key. `fleet -C SCRATCH connect TEST` uses it for a kept container.
fn write_scratch_project(
    scratch: &Path,
    hosts: &[(String, TestHost)],
    tests: &[Test],
) -> Result<()> {
    let mut inventory = toml::Table::new();
    let mut table = toml::Table::new();
    let mut known = String::new();
    for (name, h) in hosts {
        let mut entry = toml::Table::new();
        entry.insert("address".into(), "127.0.0.1".into());
        entry.insert("port".into(), toml::Value::Integer(h.port.into()));
        if let Some(t) = tests.iter().find(|t| t.hosts.contains(name))
            && !t.vars.is_empty()
        {
            entry.insert("vars".into(), t.vars.clone().into());
        }
        table.insert(name.clone(), entry.into());
        known.push_str(&h.known_hosts);
        known.push('\n');
    }
    inventory.insert("hosts".into(), table.into());
    write_private(&scratch.join("inventory.toml"), &inventory.to_string())?;
    write_private(&scratch.join("known_hosts"), &known)?;
    write_private(
        &scratch.join("fleet.toml"),
        "# A throwaway project of `fleet test`: its kept containers.\n\
         inventory = \"inventory.toml\"\n\n[ssh]\nuser = \"root\"\n\
         identity_file = \"id_ed25519\"\nknown_hosts = \"known_hosts\"\n",
    )
}

pub(crate) fn run(mut app: App, args: TestArgs, raw: Vec<String>) -> Result<i32> {
    if app.global.inventory.is_some() {
        return Err(Error::usage_with_help(
            "fleet test makes its own inventory of throwaway containers; leave out -i",
            "a test's hosts take their vars from its `/// @vars { … }` doc line",
        ));
    }
    // The assertions, for these runs only.
    app.scripting
        .engine
        .register_global_module(crate::script::testing::module().into());
    let (tests, all) = discover(&app, args.filter.as_deref())?;
    if tests.is_empty() && !args.build_image {
        if let (Some(f), true) = (&args.filter, all > 0) {
            return Err(Error::usage_with_help(
                format!("no test matches `{f}`"),
                "`fleet test` without a filter runs every public function of tests/*.rhai",
            ));
        }
        println!("no tests: tests/*.rhai in the project has no public function");
        return Ok(0);
    }
    let docker = Docker;
    docker.check().map_err(docker_error)?;
    let base = app.project.data_dir().join("test");
    private_dir(&base)?;
    let image = image(&base, &args, &docker)?;
    if tests.is_empty() {
        println!("built {image}; no tests to run");
        return Ok(0);
    }
    crate::exec::interrupt::install();
    let controller = crate::sysinfo::hostname();
    match docker.remove_leftovers(&controller) {
        Ok(0) => {}
        Ok(n) => {
            eprintln!("removed {n} container(s) left by an earlier fleet test that was killed")
        }
        Err(e) => eprintln!("warning: cannot look for containers of earlier test runs: {e}"),
    }
    let label = crate::session::new_run_id();
    let scratch = base.join(format!("run-{label}"));
    private_dir(&scratch)?;
    let mut cleanup = Cleanup {
        docker: Docker,
        owner: testhost::owner_label(&controller, std::process::id(), &label),
        scratch: scratch.clone(),
        keep: Vec::new(),
    };
    let (key, public) = testhost::make_key(&scratch).map_err(docker_error)?;
    let names: Vec<&String> = tests.iter().flat_map(|t| &t.hosts).collect();
    eprintln!(
        "starting {} container(s) of {image} for {} test(s)",
        names.len(),
        tests.len()
    );
    // A few at a time: each waits for its sshd, mostly idle.
    let mut started: Vec<(String, TestHost)> = Vec::new();
    for batch in names.chunks(START_AT_ONCE) {
        if crate::exec::interrupt::stopping() {
            eprintln!("interrupted: removing the containers started so far");
            return Ok(exit_code(&Ending::Run {
                hosts: &[],
                stop: Some(Stop::Interrupted),
                recipe_failed: false,
            }));
        }
        let results: Vec<_> = std::thread::scope(|s| {
            let workers: Vec<_> = batch
                .iter()
                .map(|name| {
                    let (docker, image, owner, public) = (&docker, &image, &cleanup.owner, &public);
                    s.spawn(move || (name, docker.start(image, owner, public)))
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().expect("a container start does not panic"))
                .collect()
        });
        for (name, host) in results {
            started.push(((*name).clone(), host.map_err(docker_error)?));
        }
    }
    write_scratch_project(&scratch, &started, &tests)?;

    // The run: the containers are the inventory; fleet's own files go to .fleet/test.
    app.global.inventory = Some(scratch.join("inventory.toml"));
    app.global.limit = None;
    app.global.recipes_rev = None;
    let ssh = &mut app.project.config.ssh;
    ssh.user = Some("root".into());
    ssh.port = None;
    ssh.identity_file = Some(key);
    ssh.known_hosts = Some(scratch.join("known_hosts"));
    ssh.config_file = None;
    app.project.config.data_dir = Some(base.clone());
    app.project.config.state_dir = Some(base.join("state"));
    app.project.config.log_dir = Some(base.join("logs"));
    let request = RunRequest {
        recipe: "test".into(),
        args: raw,
        params: Default::default(),
        limit: None,
        replays: None,
    };
    let run = Arc::new(start_run(&app, request)?);
    app.scripting.ctx.set_run(run.clone());
    let (mut passed, mut failed) = (0usize, Vec::new());
    for test in &tests {
        if crate::exec::interrupt::stopping() {
            break;
        }
        let started_at = std::time::Instant::now();
        let verdict = run_one(&app, &run, test);
        for name in &test.hosts {
            run.update(name, |r| r.elapsed = started_at.elapsed());
        }
        match &verdict {
            Verdict::Passed => {
                passed += 1;
                run.ui.event(None, &format!("test {} ... ok", test.name));
            }
            Verdict::Failed(message) => {
                run.ui
                    .event(None, &format!("test {} ... FAILED: {message}", test.name));
                failed.push(test);
            }
            Verdict::Interrupted => {
                run.ui
                    .event(None, &format!("test {} ... interrupted", test.name));
            }
        }
    }
    let code = finish_run(&app, &run, None);
    let skipped = tests.len() - passed - failed.len();
    eprintln!(
        "tests: {passed} passed, {} failed{}",
        failed.len(),
        if skipped > 0 {
            format!(", {skipped} not run")
        } else {
            String::new()
        }
    );
    if args.keep {
        for test in &failed {
            for name in &test.hosts {
                if let Some((_, h)) = started.iter().find(|(n, _)| n == name) {
                    if let Err(e) = cleanup.docker.keep(&h.id, name) {
                        eprintln!("warning: cannot keep the container of {name}: {e}");
                        continue;
                    }
                    cleanup.keep.push(h.id.clone());
                    eprintln!(
                        "kept the container of {name}: fleet -C {} connect {name}   (remove it with: docker rm -f {})",
                        crate::project::display_path(&scratch),
                        &h.id[..h.id.len().min(12)]
                    );
                }
            }
        }
    }
    drop(cleanup);
    Ok(code)
}

/// Runs one test on its hosts: passed, failed (why, with the failing position), or
/// stopped by Ctrl-C.
fn run_one(app: &App, run: &crate::exec::run::Run, test: &Test) -> Verdict {
    let mut hosts = Vec::new();
    for name in &test.hosts {
        match run.host(name) {
            Ok(h) => hosts.push(Dynamic::from(HostRef(Arc::new(h)))),
            Err(e) => {
                let message = e.to_string();
                run.mark_failed(name, HostStatus::Failed, &message);
                return Verdict::Failed(message);
            }
        }
        // A test that runs no command still has its row in the recap.
        run.update(name, |r| r.ran = true);
    }
    let options = CallFnOptions::new().eval_ast(true).rewind_scope(true);
    let result = current::with_host(&test.hosts[0], || {
        app.scripting.engine.call_fn_with_options::<Dynamic>(
            options,
            &mut Scope::new(),
            &test.ast,
            &test.name,
            hosts,
        )
    });
    if result.is_err() && crate::exec::interrupt::aborted() {
        for name in &test.hosts {
            run.mark_failed(name, HostStatus::Skipped, "interrupted");
        }
        return Verdict::Interrupted;
    }
    if let Err(err) = result.as_ref() {
        let located = locate(err, &test.file, &app.scripting.ctx.sources);
        let at = located
            .location
            .as_ref()
            .map(|l| format!(" (at {l})"))
            .unwrap_or_default();
        return Verdict::Failed(match located.cause {
            Cause::Host(f) => {
                let message = format!("{}{at}", f.message);
                run.mark_failed(&f.host, f.status(), &message);
                format!("{}: {message}", f.host)
            }
            Cause::Thrown(m) | Cause::Script(m) => {
                let message = format!("{m}{at}");
                for name in &test.hosts {
                    run.mark_failed(name, HostStatus::Failed, &message);
                }
                message
            }
        });
    }
    // A host that failed inside `each` fails the test too.
    let failure = test.hosts.iter().find_map(|name| {
        run.record(name)
            .failure
            .map(|(_, message)| format!("{name}: {message}"))
    });
    match failure {
        Some(message) => Verdict::Failed(message),
        None => Verdict::Passed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vars_come_from_the_doc_line_as_inline_toml() {
        let vars = vars_of(
            "tests/a.rhai",
            "t",
            &["/// Checks the site.\n/// @vars { apps = [\"nginx\"], ssh = { port = 22 } }"],
        )
        .unwrap();
        assert_eq!(vars.to_string(), "apps = [\"nginx\"]\n\n[ssh]\nport = 22\n");
        assert!(vars_of("f", "t", &["/// nothing here"]).unwrap().is_empty());
        let bad = vars_of("tests/a.rhai", "t", &["/// @vars apps = 1"]).unwrap_err();
        assert!(
            bad.to_string()
                .contains("tests/a.rhai: @vars of test `t` is not a TOML inline table"),
            "{bad}"
        );
    }
}
