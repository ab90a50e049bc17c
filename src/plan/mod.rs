//! Plans: a manifest expanded into points. (Being written.)

mod point;

pub use point::{Point, Resources, Scaling};

use serde::{Deserialize, Serialize};

/// The expanded points of one manifest, in manifest order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub experiment: String,
    pub manifest_sha256: String,
    pub points: Vec<Point>,
}
