//! Where a Lambda's init time goes, piece by piece: each thing `main`
//! builds before it asks for the first event, built again per iteration.
//! `cargo bench -p telehook --bench init`; `scripts/bench-init` times the
//! whole binaries against a hello-world one. Figures in BENCHMARKS.md.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use aws_config::Region;
use criterion::{Criterion, criterion_group, criterion_main};
use telehook::auth::jwks::JwksCache;
use telehook::aws::{AwsClients, sdk_config_loader};

fn init(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // The phone-number metadata: decoding the embedded tables and building
    // the lookup maps, then the first parse, which compiles the patterns of
    // one region (what `domain::phone::warm_up` does at init).
    c.bench_function("init_phone_metadata_and_first_parse", |b| {
        b.iter(|| {
            let util = rlibphonenumber::PhoneNumberUtil::new().unwrap();
            util.parse("+14155552671", None).unwrap()
        })
    });
    // The SDK configuration as the Lambdas load it (region given here, so
    // the bench does not depend on the environment), then the four clients.
    // Loading builds the default HTTPS client, which reads the system's
    // trust roots.
    c.bench_function("init_sdk_config", |b| {
        b.iter(|| rt.block_on(sdk_config_loader().region(Region::new("us-east-1")).load()))
    });
    let sdk = rt.block_on(sdk_config_loader().region(Region::new("us-east-1")).load());
    c.bench_function("init_sdk_clients", |b| b.iter(|| AwsClients::new(&sdk)));
    // The HTTP client for the issuer's keys (its TLS setup included).
    let url: reqwest::Url = "https://example.okta.com/oauth2/default/v1/keys"
        .parse()
        .unwrap();
    c.bench_function("init_jwks_http_client", |b| {
        b.iter(|| {
            JwksCache::new(
                url.clone(),
                Duration::from_secs(3600),
                Duration::from_secs(60),
            )
            .unwrap()
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(4));
    targets = init
}
criterion_main!(benches);
