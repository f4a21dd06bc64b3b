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
use telehook::domain::PhoneNumber;
use telehook::domain::phone::{Numbering, Reach, Region as PhoneRegion};

fn init(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // The phone-number metadata. Decoding the tables the library embeds
    // (once per process, for every region's calling code), then building
    // the library for the regions a deployment reaches and reading one
    // number of each allowed country, which compiles their patterns (what
    // `domain::phone::prepare` does at init): the default allow-list, and
    // every country.
    let tables: &[u8] = include_bytes!(env!("TELEHOOK_PHONE_METADATA"));
    c.bench_function("init_phone_decode_tables", |b| {
        b.iter(|| {
            <rlibphonenumber::PhoneMetadataCollection as prost::Message>::decode(tables).unwrap()
        })
    });
    let us: PhoneRegion = "US".parse().unwrap();
    let ca: PhoneRegion = "CA".parse().unwrap();
    let first_reads = |numbering: &Numbering| {
        for number in ["+14155552671", "+16042345678"] {
            PhoneNumber::read_with(numbering, number, us).unwrap();
        }
    };
    c.bench_function("init_phone_metadata_us_ca", |b| {
        b.iter(|| {
            let numbering = Numbering::for_reach(&Reach::Regions(vec![us, ca]));
            first_reads(&numbering);
            numbering
        })
    });
    c.bench_function("init_phone_metadata_everywhere", |b| {
        b.iter(|| {
            let numbering = Numbering::for_reach(&Reach::Everywhere);
            first_reads(&numbering);
            numbering
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
