//! The media engine and its runtime, end to end, in one test binary (simulated
//! time, and real loopback sockets for the runtime's): each module is one
//! concern. One binary rather than one per file, as each links the whole engine;
//! the allocation-counting tests stay binaries of their own (each installs a
//! counting global allocator).

mod amd_engine;
mod hostile_input_never_panics;
mod kernel_relay;
mod kernel_relay_remote;
mod recording;
mod runtime_clip_rate;
mod runtime_echo_over_udp;
mod runtime_kernel_relay;
mod runtime_srtp;
mod sim_bridge;
mod sim_bridge_across_engines;
mod sim_conference;
mod sim_late_ticks;
mod sim_media_update;
mod sim_offload;
mod sim_passthrough;
mod sim_playback;
mod sim_ptime;
mod sim_rtcp;
mod sim_stream_legs;
mod sim_supervise;
mod sim_two_legs;
mod webrtc_engine;
mod webrtc_passthrough;
mod webrtc_sim;
mod webrtc_trickle;
