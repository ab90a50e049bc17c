//! Points: one combination of axis values, the unit that is launched, timed and recorded, and the
//! data file a point reads, pinned by its sha256 when the plan is made.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Scaling;
use crate::value::Value;
use crate::workload::{self, Params, Workload};

pub use crate::resources::Resources;

/// One point of a plan. Everything `scalelab point` needs to run it is here.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Short stable hash of the canonical (study, values): the same point in an edited manifest keeps
    /// its id, so a resumed run recognises finished points.
    pub id: String,
    /// Index of the study in the manifest (0-based).
    pub study: usize,
    /// Study label: its `name` key, or its workload name.
    pub study_name: String,
    pub workload: String,
    pub scaling: Scaling,
    pub resources: Resources,
    /// Workload parameters, defaults filled in; weak-scaling sizes already scaled.
    pub params: Params,
    pub repetitions: u32,
    pub warmup: u32,
    /// Wall-clock limit of the whole point process, in seconds.
    pub timeout_s: f64,
    /// More ranks or threads than cores was allowed by the manifest for this point.
    #[serde(default)]
    pub oversubscribed: bool,
    /// The data file the point reads (a CSV `dataset`), resolved and hashed when the plan was
    /// made. Not part of the id: the id names what the manifest asks to measure, so the same
    /// manifest planned from another checkout or folder keeps its ids and its runs compare; a
    /// file that changes under a run is refused by the point instead ([`Point::params_for_run`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<DataFile>,
}

/// A data file pinned by a plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataFile {
    /// The workload parameter that names it (`dataset`).
    pub param: String,
    /// Absolute path, resolved against the manifest's folder when the plan was made.
    pub path: PathBuf,
    /// sha256 of the file's bytes, hex.
    pub sha256: String,
}

/// The data file `w` reads for `params` (its parameter and absolute path, a relative one joined
/// to `dir`), or `None` when it reads none.
pub(crate) fn resolve_data(
    w: &dyn Workload,
    params: &Params,
    dir: &Path,
) -> Option<(&'static str, PathBuf)> {
    let (param, written) = w.data_file(params)?;
    let path = Path::new(written);
    Some((
        param,
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            dir.join(path)
        },
    ))
}

/// sha256 of a file's bytes, hex, read in blocks.
pub fn sha256_file(path: &Path) -> anyhow::Result<String> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(super::hex(&hasher.finalize()))
}

impl Point {
    /// The registered workload of this point. Plans only hold registered names.
    pub fn workload(&self) -> Option<&'static dyn Workload> {
        workload::find(&self.workload)
    }

    /// The parameters `prepare` gets: the plan's, with a pinned data file replaced by its absolute
    /// path once its sha256 is checked, so that a point measures the file the plan was made with,
    /// from any folder, or fails saying so.
    pub fn params_for_run(&self) -> anyhow::Result<Params> {
        let Some(data) = &self.data else {
            return Ok(self.params.clone());
        };
        let changed = |now: &str| {
            format!(
                "{} changed since the plan was made (sha256 {}…, now {now}): restore it or start a new run",
                data.path.display(),
                &data.sha256[..data.sha256.len().min(12)]
            )
        };
        match sha256_file(&data.path) {
            Ok(sha) if sha == data.sha256 => {}
            Ok(sha) => bail!("{}", changed(&format!("{}…", &sha[..12]))),
            Err(e) => bail!("{} ({e:#})", changed("unreadable")),
        }
        Ok(self.params_with_data_path())
    }

    /// The plan's parameters with a pinned data file's parameter replaced by its absolute path,
    /// without checking its sha256: what a workload's analytic `work` reads (the shape of a CSV
    /// dataset) from any folder.
    pub fn params_with_data_path(&self) -> Params {
        let mut params = self.params.clone();
        if let Some(data) = &self.data {
            params.0.insert(
                data.param.clone(),
                Value::Text(data.path.to_string_lossy().into_owned()),
            );
        }
        params
    }
}
