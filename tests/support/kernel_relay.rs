//! Bond's in-kernel passthrough relay (`bond_media_engine::runtime::kernel_relay`),
//! which the load generator also drives on its own (`bridge-load --relay
//! kernel`) to measure the mechanism apart from Bond. Needs root (CAP_BPF and
//! CAP_NET_ADMIN) and a Bond built with clang and libbpf-dev (`scripts/test`
//! installs them).

pub use bond_media_engine::runtime::kernel_relay::{path_to, KernelRelay, Route, RouteCounts};
