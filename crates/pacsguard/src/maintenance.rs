//! `pacsguard maintenance start|list|end`: announce a legitimate mass change (see
//! `pacsguard_engine::maintenance`). It works while a watcher holds the home: the
//! watcher picks the window up within a second and puts it on the trail. `start` returns
//! once the running watcher has acknowledged the window (at most
//! `MAINTENANCE_ACK_TIMEOUT`), and says whether it did, or that no watcher runs.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use pacsguard_engine::Home;
use pacsguard_engine::maintenance::{self, MaintenanceWindow};

#[derive(Subcommand, Debug)]
pub enum MaintenanceCommand {
    /// Open a window on ROOT (a directory and everything below it) until --until.
    Start {
        root: PathBuf,
        /// When it ends by itself: an RFC 3339 time (2026-12-01T18:00:00Z) or a duration
        /// from now (2h, 90min); at most a week.
        #[arg(long, value_name = "TIME")]
        until: String,
        /// Why (a change ticket, the migration's name): recorded on the trail.
        #[arg(long, required = true)]
        reason: String,
        #[arg(long)]
        json: bool,
    },
    /// The windows still open.
    List {
        #[arg(long)]
        json: bool,
    },
    /// End window ID now.
    End {
        id: u64,
        #[arg(long)]
        json: bool,
    },
}

impl MaintenanceCommand {
    /// Whether the caller asked for JSON (then an error is a JSON document too).
    pub fn wants_json(&self) -> bool {
        match self {
            MaintenanceCommand::Start { json, .. }
            | MaintenanceCommand::List { json }
            | MaintenanceCommand::End { json, .. } => *json,
        }
    }
}

fn show(windows: &[MaintenanceWindow], json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(windows)?);
    } else if windows.is_empty() {
        println!("no maintenance window is open");
    } else {
        for window in windows {
            println!("{}", window.describe());
        }
    }
    Ok(())
}

pub fn run(home: &Home, command: MaintenanceCommand) -> Result<ExitCode> {
    match command {
        MaintenanceCommand::Start {
            root,
            until,
            reason,
            json,
        } => {
            let until = maintenance::parse_until(&until)?;
            let window = maintenance::start(home, &root, until, &reason)?;
            show(std::slice::from_ref(&window), json)?;
            // Returned only once a running watcher has taken the window, so that a change
            // made right after is judged inside it (issue 11, session 50), or said not.
            let ack =
                maintenance::wait_for_ack(home, &window, maintenance::MAINTENANCE_ACK_TIMEOUT);
            match ack {
                maintenance::Acknowledged::NotInTime { .. } => {
                    eprintln!("warning: {}", ack.describe());
                }
                _ if json => eprintln!("{}", ack.describe()),
                _ => println!("{}", ack.describe()),
            }
        }
        MaintenanceCommand::List { json } => show(&maintenance::list(home)?, json)?,
        MaintenanceCommand::End { id, json } => {
            let window = maintenance::end(home, id)?;
            show(std::slice::from_ref(&window), json)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
