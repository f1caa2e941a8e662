//! Shared helpers for the unit tests.

use motstream_core::Catalog;

/// The shipped airline catalog.
pub(crate) fn airline() -> Catalog {
    Catalog::from_yaml(
        include_str!("../../../deploy/catalog/airline.yaml"),
        "airline.yaml",
    )
    .expect("the shipped catalog is valid")
}

/// The shipped telecom catalog.
pub(crate) fn telecom() -> Catalog {
    Catalog::from_yaml(
        include_str!("../../../deploy/catalog/telecom-repair.yaml"),
        "telecom-repair.yaml",
    )
    .expect("the shipped catalog is valid")
}

/// The standard normal CDF (Zelen and Severo 26.2.17, absolute error below 7.5e-8).
pub(crate) fn normal_cdf(z: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.231_641_9 * z.abs());
    let poly = t
        * (0.319_381_530
            + t * (-0.356_563_782
                + t * (1.781_477_937 + t * (-1.821_255_978 + t * 1.330_274_429))));
    let tail = (-z * z / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt() * poly;
    if z >= 0.0 { 1.0 - tail } else { tail }
}
