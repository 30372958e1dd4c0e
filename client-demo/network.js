// A WebSocket the demo can "unplug": drop() makes the SDK see exactly what a lost network gives
// it (close 1006, no close frame, no error event), while the real socket is closed quietly so the
// gateway detaches the session and keeps it resumable. Browsers may not send 1006 themselves.

/** Returns `{ WebSocket, drop }`: pass `WebSocket` to ParleyClient; `drop()` cuts the live socket. */
export function droppableWebSocket(Native = globalThis.WebSocket) {
  let current = null;

  class DroppableSocket {
    static CONNECTING = 0;
    static OPEN = 1;
    static CLOSING = 2;
    static CLOSED = 3;

    constructor(url, protocols) {
      this.onopen = null;
      this.onmessage = null;
      this.onclose = null;
      this.onerror = null;
      this.dropped = false;
      this.ws = new Native(url, protocols);
      this.ws.onopen = (e) => this.onopen?.(e);
      this.ws.onmessage = (e) => this.onmessage?.(e);
      this.ws.onclose = (e) => this.onclose?.(e);
      this.ws.onerror = (e) => this.onerror?.(e);
      current = this;
    }

    get readyState() { return this.dropped ? DroppableSocket.CLOSED : this.ws.readyState; }
    get protocol() { return this.ws.protocol; }
    get bufferedAmount() { return this.dropped ? 0 : this.ws.bufferedAmount; }
    get binaryType() { return this.ws.binaryType; }
    set binaryType(v) { this.ws.binaryType = v; }
    get url() { return this.ws.url; }

    send(data) {
      // A browser socket that went away discards what is sent; so does an unplugged one.
      if (!this.dropped) this.ws.send(data);
    }

    close(code, reason) {
      if (!this.dropped) this.ws.close(code, reason);
    }

    drop() {
      if (this.dropped || this.ws.readyState !== DroppableSocket.OPEN) return false;
      this.dropped = true;
      this.ws.onopen = this.ws.onmessage = this.ws.onclose = this.ws.onerror = null;
      this.ws.close(3000, 'demo: simulated network drop');
      // Asynchronously, as a real close event would arrive.
      setTimeout(() => this.onclose?.({ code: 1006, reason: '', wasClean: false }), 0);
      return true;
    }
  }

  return {
    WebSocket: DroppableSocket,
    /** Cuts the current connection; false when there is no open one. */
    drop: () => current?.drop() ?? false,
  };
}
