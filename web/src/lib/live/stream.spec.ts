import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type LiveAlert, type LiveReading, LiveStream, type SocketLike, type StreamListener } from './stream';

class FakeSocket implements SocketLike {
  onopen: ((event: Event) => void) | null = null;
  onmessage: ((event: MessageEvent) => void) | null = null;
  onclose: ((event: CloseEvent) => void) | null = null;
  readyState = 0;
  sent: string[] = [];
  constructor(readonly url: string) {}
  send(data: string) {
    this.sent.push(data);
  }
  close() {
    this.readyState = 3;
  }
  serverOpens() {
    this.readyState = 1;
    this.onopen?.(new Event('open'));
  }
  serverSends(message: unknown) {
    this.onmessage?.({ data: JSON.stringify(message) } as MessageEvent);
  }
  serverCloses(code: number) {
    this.readyState = 3;
    this.onclose?.({ code } as CloseEvent);
  }
}

function recorder() {
  const seen = { readings: [] as LiveReading[][], alerts: [] as LiveAlert[], states: [] as string[], refused: 0 };
  const listener: StreamListener = {
    readings: (batch) => seen.readings.push(batch),
    alert: (alert) => seen.alerts.push(alert),
    state: (state) => seen.states.push(state),
    unauthorized: () => (seen.refused += 1),
  };
  return { seen, listener };
}

describe('LiveStream', () => {
  let sockets: FakeSocket[];
  const open = (url: string) => {
    const socket = new FakeSocket(url);
    sockets.push(socket);
    return socket;
  };
  beforeEach(() => {
    sockets = [];
    vi.useFakeTimers();
  });
  afterEach(() => vi.useRealTimers());

  it('subscribes to the chosen buildings once open, and again after each change', () => {
    const { listener } = recorder();
    const stream = new LiveStream(() => 'ws://x/stream?access_token=t', listener, open);
    stream.subscribe(['b1']);
    expect(sockets[0].sent).toEqual([]); // not open yet: sent on open
    sockets[0].serverOpens();
    stream.subscribe(['b2']);
    expect(sockets[0].sent.map((s) => JSON.parse(s))).toEqual([
      { action: 'subscribe', building_ids: ['b1'] },
      { action: 'subscribe', building_ids: ['b2'] },
    ]);
  });

  it('hands readings and alerts to the listener, and ignores what it does not know', () => {
    const { seen, listener } = recorder();
    new LiveStream(() => 'ws://x', listener, open);
    sockets[0].serverOpens();
    sockets[0].serverSends({ type: 'subscribed', sensor_ids: [] });
    sockets[0].serverSends({ type: 'readings', readings: [{ sensor_id: 's', value: 1 }] });
    sockets[0].serverSends({ type: 'alert', alert: { id: 'a', severity: 'critical' } });
    sockets[0].onmessage?.({ data: '{broken' } as MessageEvent);
    expect(seen.readings).toHaveLength(1);
    expect(seen.alerts.map((a) => a.id)).toEqual(['a']);
    expect(seen.states).toEqual(['connecting', 'open']);
  });

  it('reconnects with a growing delay, and resubscribes', () => {
    const { listener } = recorder();
    const stream = new LiveStream(() => 'ws://x', listener, open);
    stream.subscribe(['b1']);
    sockets[0].serverOpens();
    sockets[0].serverCloses(1006);
    vi.advanceTimersByTime(999);
    expect(sockets).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(sockets).toHaveLength(2);
    sockets[1].serverCloses(1006); // never opened: the delay doubles
    vi.advanceTimersByTime(1999);
    expect(sockets).toHaveLength(2);
    vi.advanceTimersByTime(1);
    sockets[2].serverOpens();
    expect(JSON.parse(sockets[2].sent[0])).toEqual({ action: 'subscribe', building_ids: ['b1'] });
  });

  it('stops and reports a refused token instead of retrying', () => {
    const { seen, listener } = recorder();
    new LiveStream(() => 'ws://x', listener, open);
    sockets[0].serverCloses(1008);
    vi.advanceTimersByTime(60_000);
    expect(seen.refused).toBe(1);
    expect(sockets).toHaveLength(1);
  });

  it('does not reconnect once closed', () => {
    const { listener } = recorder();
    const stream = new LiveStream(() => 'ws://x', listener, open);
    sockets[0].serverOpens();
    stream.close();
    sockets[0].serverCloses(1000);
    vi.advanceTimersByTime(60_000);
    expect(sockets).toHaveLength(1);
  });
});
