//! A throwaway PostgreSQL cluster for one test: `initdb` in a temporary
//! directory, a server on a Unix socket there (no TCP port), stopped and
//! deleted when dropped.
//!
//! `initdb` refuses to run as root, and CI runs as root: there the cluster
//! belongs to the `postgres` system user (Debian's `postgresql` package
//! creates it) and its programs run through `runuser`. Outside CI a machine
//! without PostgreSQL skips the test and says why; in CI (`CI` set) it fails.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A running throwaway cluster; [`TestPg::url`] reaches it.
#[derive(Debug)]
pub struct TestPg {
    dir: tempfile::TempDir,
    bin: PathBuf,
    run_as: Option<String>,
    url: String,
}

/// Where the server programs are: `$KLING_TEST_PG_BIN`, the newest
/// `/usr/lib/postgresql/*/bin`, or `initdb` on the `PATH`.
fn bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("KLING_TEST_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .find(|dir| dir.join("initdb").exists() && dir.join("pg_ctl").exists())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

impl TestPg {
    /// Starts a cluster, or `None` when this machine has no PostgreSQL and
    /// this is not CI (printed to stderr with `test`, the test's name).
    ///
    /// # Panics
    /// In CI without PostgreSQL, and whenever a cluster cannot be started.
    pub fn start(test: &str) -> Option<TestPg> {
        let Some(bin) = bin_dir() else {
            let why = "no PostgreSQL server programs (initdb, pg_ctl): install Debian's `postgresql` package, or set KLING_TEST_PG_BIN";
            if std::env::var_os("CI").is_some() {
                panic!("{test}: {why}; CI runs every PostgreSQL test");
            }
            eprintln!("skipped {test}: {why}");
            return None;
        };
        Some(TestPg::start_in(bin))
    }

    fn start_in(bin: PathBuf) -> TestPg {
        let run_as = is_root().then(|| "postgres".to_owned());
        let dir = tempfile::Builder::new()
            .prefix("kling-pg-")
            .tempdir()
            .expect("a temporary directory");
        if let Some(user) = &run_as {
            let status = Command::new("chown")
                .arg(user)
                .arg(dir.path())
                .status()
                .expect("chown runs");
            assert!(
                status.success(),
                "chown {user} {}: {status}",
                dir.path().display()
            );
        }
        let data = dir.path().join("data");
        let socket = dir.path().to_path_buf();
        let mut pg = TestPg {
            url: format!(
                "postgres://postgres@localhost/postgres?host={}",
                socket.display()
            ),
            dir,
            bin,
            run_as,
        };
        pg.run(
            "initdb",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-U".as_ref(),
                "postgres".as_ref(),
                "-A".as_ref(),
                "trust".as_ref(),
                "-E".as_ref(),
                "UTF8".as_ref(),
                "--no-sync".as_ref(),
                "--no-instructions".as_ref(),
            ],
        );
        pg.restart();
        pg
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        match &self.run_as {
            Some(user) => {
                let mut command = Command::new("runuser");
                command.args(["-u", user, "--"]).arg(path);
                command
            }
            None => Command::new(path),
        }
    }

    fn run(&mut self, program: &str, args: &[&std::ffi::OsStr]) {
        let out = self
            .command(program)
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("{program} cannot start: {e}"));
        if !out.status.success() {
            let log =
                std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
            panic!(
                "{program} failed ({}): {}{}\nserver log:\n{log}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    /// The URL of its `postgres` database, as user `postgres` (no password)
    /// over the socket: `postgres://postgres@localhost/postgres?host=DIR`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The directory holding the socket and the data.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops the server at once (as a crash would), leaving the data: the
    /// database is unreachable until [`TestPg::restart`].
    pub fn stop(&mut self) {
        let args = self.stop_args();
        let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        self.run("pg_ctl", &args);
    }

    /// `pg_ctl`'s arguments for an immediate stop.
    fn stop_args(&self) -> Vec<std::ffi::OsString> {
        let data = self.dir.path().join("data");
        [
            "-D".into(),
            data.into_os_string(),
            "-m".into(),
            "immediate".into(),
            "-w".into(),
            "stop".into(),
        ]
        .into()
    }

    /// Starts the server (again, after [`TestPg::stop`]) on the same data.
    pub fn restart(&mut self) {
        let data = self.dir.path().join("data");
        let log = self.dir.path().join("server.log");
        let server_options = format!(
            "-c listen_addresses='' -k {} -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            self.dir.path().display()
        );
        self.run(
            "pg_ctl",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-o".as_ref(),
                server_options.as_ref(),
                "-l".as_ref(),
                log.as_os_str(),
                "-w".as_ref(),
                "-t".as_ref(),
                "60".as_ref(),
                "start".as_ref(),
            ],
        );
    }
}

impl Drop for TestPg {
    fn drop(&mut self) {
        // Already stopped (TestPg::stop) is fine: the answer is not checked.
        let _ = self.command("pg_ctl").args(self.stop_args()).output();
    }
}
