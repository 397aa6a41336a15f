// The WebSocket: events in, log subscriptions out, reconnecting by itself with backoff.

const listeners = new Map(); // event name → Set of callbacks
const subscriptions = new Set(); // task ids whose log lines we want
let socket = null;
let state = "connecting";
let retryMs = 500;
let timer = null;

export function on(event, fn) {
  if (!listeners.has(event)) listeners.set(event, new Set());
  listeners.get(event).add(fn);
  return () => listeners.get(event).delete(fn);
}

function emit(event, data) {
  for (const fn of listeners.get(event) || []) {
    try {
      fn(data);
    } catch (e) {
      console.error(e);
    }
  }
}

function setState(s) {
  state = s;
  emit("connection", s);
}

export const connection = () => state;

export function subscribe(taskId) {
  subscriptions.add(taskId);
  send({ subscribe: taskId });
}

export function unsubscribe(taskId) {
  subscriptions.delete(taskId);
  send({ unsubscribe: taskId });
}

function send(msg) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(msg));
}

export function connect() {
  clearTimeout(timer);
  const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";
  setState(state === "live" ? "reconnecting" : state);
  const ws = new WebSocket(url);
  socket = ws;
  ws.addEventListener("open", () => {
    retryMs = 500;
    setState("live");
    for (const id of subscriptions) send({ subscribe: id });
  });
  ws.addEventListener("message", (m) => {
    let msg;
    try {
      msg = JSON.parse(m.data);
    } catch {
      return;
    }
    if (msg && typeof msg.event === "string") emit(msg.event, msg.data);
  });
  ws.addEventListener("close", () => {
    if (socket !== ws) return;
    socket = null;
    setState("reconnecting");
    timer = setTimeout(connect, retryMs);
    retryMs = Math.min(retryMs * 2, 5000);
  });
  ws.addEventListener("error", () => ws.close());
}

// Coming back to a hidden tab: reconnect at once instead of waiting for the backoff.
document.addEventListener("visibilitychange", () => {
  if (!document.hidden && !socket) connect();
});
