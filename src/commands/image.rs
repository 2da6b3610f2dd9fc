//! `fleet image fetch URL --node NODE [--storage S] [--sha512 SUM]`: a Proxmox node
//! downloads a cloud image or container template into a storage (`ops::proxmox::image`),
//! verified before it is moved into place; one already there is not fetched again.

use crate::App;
use crate::error::{Error, Result};
use crate::exec::fanout::fan_out;
use crate::ops::proxmox::image::{self, Fetch};
use crate::ops::remote::Remote;
use crate::session::{RunRequest, finish_run_with, start_run};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ImageAction {
    /// Download URL on the node into the storage (checked against --sha512)
    Fetch,
}

/// The arguments of `fleet image fetch`.
#[derive(Debug, Clone)]
pub(crate) struct ImageArgs {
    pub(crate) action: ImageAction,
    pub(crate) url: String,
    pub(crate) node: String,
    pub(crate) storage: String,
    pub(crate) sha512: Option<String>,
}

pub(crate) fn run(app: &App, args: &ImageArgs) -> Result<i32> {
    let ImageAction::Fetch = args.action;
    let fetch = Fetch::new(&args.url, &args.storage, args.sha512.as_deref()).map_err(|e| {
        Error::usage_with_help(
            format!("{e}; nothing was sent"),
            "fleet image fetch URL --node NODE [--storage S] [--sha512 SUM]",
        )
    })?;
    let inventory = super::load_inventory(app)?;
    inventory.require(&args.node)?;
    let mut cmdline = vec![
        "fetch".to_string(),
        args.url.clone(),
        "--node".into(),
        args.node.clone(),
        "--storage".into(),
        args.storage.clone(),
    ];
    if let Some(s) = &args.sha512 {
        cmdline.extend(["--sha512".into(), s.clone()]);
    }
    let request = RunRequest {
        recipe: "image".into(),
        args: cmdline,
        params: Default::default(),
        limit: None,
        replays: None,
    };
    let run = start_run(app, request)?;
    let nodes = vec![run.inventory.require(&args.node)?];
    fan_out(&run, &nodes, |node| {
        let r = run.remote(node);
        let got = image::fetch(&r, &fetch)?;
        if got.downloaded {
            let verb = if r.check_mode() {
                "would fetch"
            } else {
                "fetched"
            };
            r.out(&format!("{verb} {} ({})", got.volid, got.path));
        }
        Ok(())
    });
    Ok(finish_run_with(app, &run, None, true))
}
