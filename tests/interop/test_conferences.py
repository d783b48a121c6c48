"""Conferences (`/v2/conferences`) driven by the official Telnyx Python SDK against
a real `bond serve` on its defaults, with three sipp callers whose media is the
test's sockets, each saying its own tone at the same time. Each caller must hear
the other two and not itself; a coach (`whisper`) is heard by the agent it
names and by nobody else; `speak` is heard by everyone; `end` hangs everyone
up with Telnyx's events.
"""

import threading

from telnyx import Telnyx

from conftest import API_KEY, share_at, tone
from test_queues import answered_caller
from test_sip_trunk import exchange_rtp, pcmu_samples, rtp_packets, trunk_connection, wait_event

TONES = [700, 1100, 1500]


def talk_together(parties, seconds, after=0):
    """Each (media socket, Bond's RTP port) says its tone for `seconds`, all at
    once, its RTP going on from `after` seconds already sent; returns what each
    heard over the last second."""
    heard = [None] * len(parties)

    def run(i, media, port):
        samples = tone(TONES[i], 8000, int(8000 * seconds), amplitude=5000)
        packets = rtp_packets(samples, seq=1 + 50 * after, ts=8000 * after)
        heard[i] = pcmu_samples(exchange_rtp(media, port, packets))[-8000:]

    threads = [threading.Thread(target=run, args=(i, m, p)) for i, (m, p) in enumerate(parties)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [[share_at(h, hz, 8000) for hz in TONES] for h in heard]


def test_three_sip_callers_hear_each_other_a_coach_reaches_only_the_agent_and_end_hangs_up(bond, receiver):
    trunk_connection(bond, receiver)
    client = Telnyx(api_key=API_KEY, base_url=bond.base_url, max_retries=0)
    callers = [answered_caller(bond, receiver, client) for _ in TONES]
    calls = [call for _, _, call, _ in callers]
    parties = [(media, port) for _, media, _, port in callers]

    conference = client.conferences.create(call_control_id=calls[0], name="interop").data
    assert conference.status == "in_progress" and conference.record_type == "conference"
    for call in calls[1:]:
        assert client.conferences.actions.join(conference.id, call_control_id=call).data.result == "ok"
    for call in calls:
        wait_event(receiver, "conference.participant.joined", call_control_id=call)
    wait_event(receiver, "conference.created", call_control_id=calls[0])
    assert [p.call_control_id for p in client.conferences.list_participants(conference.id).data] == calls

    heard = talk_together(parties, 3)
    for i, shares in enumerate(heard):
        for j, share in enumerate(shares):
            if i == j:
                assert share < 0.02, f"caller {i} hears itself: {shares}"
            else:
                assert share > 0.2, f"caller {i} does not hear caller {j}: {shares}"

    # The third caller coaches the second (the agent): the first (the customer) no longer hears it.
    result = client.conferences.actions.update(
        conference.id, call_control_id=calls[2], supervisor_role="whisper", whisper_call_control_ids=[calls[1]])
    assert result.data.result == "ok"
    customer, agent, coach = talk_together(parties, 2, after=3)
    assert customer[2] < 0.02 and customer[1] > 0.5, f"the customer hears the agent, not the coach: {customer}"
    assert agent[0] > 0.2 and agent[2] > 0.2, f"the agent hears the customer and the coach: {agent}"
    assert coach[0] > 0.2 and coach[1] > 0.2, f"the coach hears the call: {coach}"

    # An announcement everyone hears, spoken by Bond's TTS into the mix.
    result = client.conferences.actions.speak(conference.id, payload="The supervisor has joined the call.", voice="female")
    assert result.data.result == "ok"
    started = wait_event(receiver, "conference.speak.started", call_control_id=calls[0])
    assert started["conference_id"] == conference.id
    media, port = parties[0]
    heard = pcmu_samples(exchange_rtp(media, port, rtp_packets([0] * 8000, seq=251, ts=8000 * 5)))
    assert max(abs(x) for x in heard) > 1000, "the customer hears the announcement"
    wait_event(receiver, "conference.speak.ended", call_control_id=calls[0])

    assert client.conferences.actions.end_conference(conference.id).data.result == "ok"
    ended = wait_event(receiver, "conference.ended", call_control_id=calls[0])
    assert ended["conference_id"] == conference.id and ended["reason"] == "ended_via_api"
    for call in calls:
        wait_event(receiver, "conference.participant.left", call_control_id=call)
        wait_event(receiver, "call.hangup", call_control_id=call)
    assert client.conferences.retrieve(conference.id).data.status == "completed"
    for caller, _, _, _ in callers:
        code, detail = caller.wait()
        assert code == 0, detail
