//! Behavioural tests, written once over the `Transport` trait and run on both transports: real QUIC on
//! 127.0.0.1 and the in-memory network. Every wait is bounded by a timeout.

mod admission;
mod cases;
mod harness;
mod limits;
mod paths;
mod traffic;

/// Instantiates every generic case for one harness.
macro_rules! for_transport {
    ($name:ident, $net:ty) => {
        mod $name {
            use super::cases;
            use super::limits;
            use super::traffic;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn two_protocols_at_once() {
                cases::two_protocols_at_once::<$net>().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn impersonation_fails_with_peer_id_mismatch() {
                cases::impersonation_fails::<$net>().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn unknown_protocol_is_refused() {
                cases::unknown_protocol_is_refused::<$net>().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn an_eager_open_sends_before_the_answer_and_still_learns_of_a_refusal() {
                cases::an_eager_open_sends_before_the_answer_and_still_learns_of_a_refusal::<$net>().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn oversized_frame_is_refused_before_allocation() {
                cases::oversized_frame_is_refused::<$net>().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn close_reason_reaches_the_peer() {
                cases::close_reason_reaches_the_peer::<$net>().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn dialing_a_connected_peer_reuses_the_connection() {
                cases::dial_reuses_connection::<$net>().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn redial_after_restart_replaces_the_stale_connection() {
                cases::redial_replaces_stale_connection::<$net>().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn simultaneous_dials_end_in_one_connection() {
                limits::simultaneous_dials::<$net>().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn full_listener_evicts_or_refuses_the_101st() {
                limits::inbound_limit::<$net>().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn outbound_limit_refuses_locally() {
                limits::outbound_limit::<$net>().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn stream_limit_is_back_pressure() {
                limits::stream_limit::<$net>().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn slow_reader_back_pressures_the_sender() {
                limits::slow_reader_back_pressure::<$net>().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn announced_frames_cannot_hold_up_other_peers_small_frames() {
                limits::announced_frames_cannot_hold_up_other_peers_small_frames::<$net>().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn hundred_peers_exchange_messages() {
                limits::hundred_peers::<$net>().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn bytes_sent_match_bytes_received() {
                traffic::bytes_sent_match_bytes_received::<$net>().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn totals_keep_closed_connections() {
                traffic::totals_keep_closed_connections::<$net>().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn simultaneous_dial_loser_is_counted_once() {
                traffic::simultaneous_dial_loser_counted_once::<$net>().await;
            }
        }
    };
}

for_transport!(quic, crate::harness::Quic);
for_transport!(memory, crate::harness::Memory);

/// QUIC only: idle timeouts and keep-alives (the in-memory network has no idle time to model).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_keep_alive_holds_and_idle_closes() {
    cases::quic_keep_alive_and_idle().await;
}

/// QUIC only: the endpoint counts a connection until its close has drained.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_endpoint_counts_a_connection_until_it_drains() {
    cases::quic_endpoint_counts_a_connection_until_it_drains().await;
}

/// QUIC only: path MTU discovery takes two probes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_path_mtu_in_two_probes() {
    cases::quic_path_mtu_in_two_probes().await;
}

/// QUIC only: one IP's inbound connections are capped; another prefix still gets in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_per_ip_cap() {
    admission::per_ip_cap().await;
}

/// QUIC only: a flood of never-finished handshakes does not lock out an honest peer (Retry).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_initial_flood_does_not_lock_out() {
    admission::initial_flood_does_not_lock_out().await;
}

/// QUIC only: handshakes from a forged source address do not lock that address out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_spoofed_initials_do_not_lock_an_address_out() {
    admission::spoofed_initials_do_not_lock_an_address_out().await;
}

/// QUIC only: stalled handshakes that answered a Retry are evicted past `max_handshakes`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_stalled_validated_handshakes_are_evicted_past_the_ceiling() {
    admission::stalled_validated_handshakes_are_evicted_past_the_ceiling().await;
}

/// QUIC only: a connection over a relay path (the datagrams carried by a stand-in for the relay).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_over_a_relay_path() {
    paths::quic_over_a_relay_path().await;
}

/// QUIC only: a direct dial replaces a connection over a relay path, on both sides.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_direct_replaces_relayed() {
    paths::direct_replaces_relayed().await;
}

/// QUIC only: a relay path admits only the peer it was opened for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_a_path_carries_only_its_peer() {
    paths::a_path_carries_only_its_peer().await;
}
