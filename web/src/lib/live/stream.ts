/**
 * The live stream (`WS /api/v1/iot/stream`): one socket, subscribed to the buildings on screen, reconnecting with
 * backoff; readings and critical alerts are handed to the listeners as they arrive.
 */
export interface LiveReading {
  sensor_id: string;
  building_id: string;
  unit_id: string | null;
  timestamp: string;
  value: number;
  unit_of_measure: string;
  quality: string;
  is_anomaly: boolean;
  battery_level?: number | null;
  signal_strength?: number | null;
}

export interface LiveAlert {
  id: string;
  sensor_id: string;
  building_id: string;
  unit_id: string | null;
  alert_type: string;
  severity: string;
  message: string;
  triggered_at: string;
  occurrences: number;
  reading_value: number | null;
  threshold_value: number | null;
  purpose: string;
}

export type StreamState = 'connecting' | 'open' | 'closed';

export interface StreamListener {
  readings(batch: LiveReading[]): void;
  alert(alert: LiveAlert): void;
  state(state: StreamState): void;
  /** The server refused the token (expired): reconnecting would not help. */
  unauthorized(): void;
}

export interface SocketLike {
  onopen: ((event: Event) => void) | null;
  onmessage: ((event: MessageEvent) => void) | null;
  onclose: ((event: CloseEvent) => void) | null;
  send(data: string): void;
  close(): void;
}

const POLICY_VIOLATION = 1008; // how the server closes a socket whose token it refuses
const MAX_BACKOFF_MS = 15_000;

export class LiveStream {
  private socket: SocketLike | null = null;
  private buildingIds: string[] = [];
  private backoff = 1000;
  private closed = false;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly url: () => string,
    private readonly listener: StreamListener,
    private readonly open: (url: string) => SocketLike = (url) => new WebSocket(url),
  ) {
    this.connect();
  }

  /** Receive the readings of these buildings' sensors (all that the caller may read when empty). */
  subscribe(buildingIds: string[]): void {
    this.buildingIds = [...buildingIds];
    this.sendSubscription();
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.socket?.close();
    this.socket = null;
  }

  private connect(): void {
    this.listener.state('connecting');
    const socket = this.open(this.url());
    this.socket = socket;
    socket.onopen = () => {
      this.backoff = 1000;
      this.listener.state('open');
      this.sendSubscription();
    };
    socket.onmessage = (event) => this.receive(String(event.data));
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.listener.state('closed');
      if (this.closed) return;
      if (event.code === POLICY_VIOLATION) {
        this.listener.unauthorized();
        return;
      }
      this.timer = setTimeout(() => this.connect(), this.backoff);
      this.backoff = Math.min(this.backoff * 2, MAX_BACKOFF_MS);
    };
  }

  private sendSubscription(): void {
    const socket = this.socket as (SocketLike & { readyState?: number }) | null;
    if (!socket || socket.readyState !== 1) return;
    socket.send(JSON.stringify({ action: 'subscribe', building_ids: this.buildingIds }));
  }

  private receive(text: string): void {
    let message: { type?: string; readings?: LiveReading[]; alert?: LiveAlert };
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    if (message.type === 'readings' && message.readings) this.listener.readings(message.readings);
    else if (message.type === 'alert' && message.alert) this.listener.alert(message.alert);
  }
}
