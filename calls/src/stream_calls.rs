//! Call control for carrier media streams: the streams `bond-streams` reports
//! become calls (or the leg of a call Bond dialed through Telnyx), and end them.

use bond_media_engine::runtime::{EngineHandle, StreamLeg};
use bond_store::{CallId, Connection, Ending};
use bond_streams::{StreamCall, StreamControl};

use super::dial::new_call;
use super::error::CallError;
use super::service::CallService;
use super::telnyx;

impl StreamControl for CallService {
    type Refused = CallError;

    fn engine(&self) -> &EngineHandle {
        &self.engine
    }

    /// A carrier opened a media stream: its leg (made by `placed`, on the shard
    /// whose thread serves the socket) becomes an incoming call, answered
    /// (media is flowing) and parked until the application bridges it.
    async fn started(
        &self,
        connection: &Connection,
        stream: StreamCall,
        placed: &EngineHandle,
    ) -> Result<(CallId, StreamLeg), CallError> {
        let leg = placed.create_stream_leg(stream.codec).await?;
        // The stream of a call Bond dialed through Telnyx: it becomes that call's leg.
        let dialed = stream.client_state.as_deref().and_then(telnyx::bond_call_of);
        if let Some(bond_call) = dialed.filter(|c| self.telnyx.is_telnyx(c) && self.registry.leg(c).is_none())
        {
            // Only a call of this connection: another's client_state attaches nothing.
            let call = self.store.get_call(&connection.organization_id, &bond_call).await;
            if call?.filter(|c| c.connection_id == connection.id).is_none() {
                let _ = self.engine.hangup(leg.id).await;
                return Err(CallError::Ended);
            }
            if let Some(config) = self.live.update(&bond_call, |c| c.pending_amd.take()) {
                let _ = self.engine.start_amd(leg.id, config).await;
            }
            self.leg_up(&bond_call, leg.id).await;
            return Ok((bond_call, leg));
        }
        let mut new = new_call(connection, "incoming", stream.from, stream.to);
        new.client_state = stream.client_state;
        let codec = stream.codec.encoding_name();
        let call =
            self.record_answered(&new, leg.id, codec, stream.codec.sample_rate(), stream.extra).await?;
        Ok((call.call_control_id, leg))
    }

    /// The carrier stopped the stream (`stopped`) or its socket closed.
    async fn ended(&self, call_control_id: &CallId, stopped: bool) {
        if self.registry.leg(call_control_id).is_none() {
            return; // hung up from the API already
        }
        let ending =
            if stopped { Ending::HUNG_UP } else { Ending { cause: "unspecified", source: "caller" } };
        self.end(call_control_id, ending).await;
    }
}
