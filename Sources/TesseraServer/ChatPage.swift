// The chat page served at /: one self-contained HTML file (no external scripts or styles), carried in
// the binary so that `tessera serve` needs no files beside it.
//
// It talks to /v1/chat/completions with stream: true, reads the server-sent events with fetch's
// stream reader, and shows the reply as it grows; Stop aborts the fetch, which closes the connection,
// which cancels the request in the engine. `/?prompt=...&send=1` sends a message on load (the
// headless-browser check in scripts/server/ uses it).
enum ChatPage {
    static let html = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Tessera chat</title>
<style>
  :root { font-family: system-ui, sans-serif; color: #1d2430; background: #f5f6f8; }
  body { margin: 0; display: flex; height: 100vh; }
  main { flex: 1; display: flex; flex-direction: column; max-width: 860px; margin: 0 auto; padding: 12px; }
  aside { width: 240px; padding: 12px; background: #fff; border-left: 1px solid #dde1e6; font-size: 14px; }
  aside label { display: block; margin: 10px 0 2px; color: #555; }
  aside input, aside textarea { width: 100%; box-sizing: border-box; }
  #log { flex: 1; overflow-y: auto; padding: 8px; }
  .msg { margin: 8px 0; padding: 8px 12px; border-radius: 8px; white-space: pre-wrap; line-height: 1.4; }
  .user { background: #dbe9ff; align-self: flex-end; }
  .assistant { background: #fff; border: 1px solid #dde1e6; }
  .error { background: #ffe3e3; }
  .stats { font-size: 12px; color: #777; margin-top: 4px; }
  form { display: flex; gap: 8px; }
  textarea#input { flex: 1; height: 60px; font: inherit; padding: 6px; }
  button { padding: 6px 14px; font: inherit; }
  h1 { font-size: 18px; margin: 4px 0 8px; }
</style>
</head>
<body>
<main>
  <h1>Tessera chat <span id="model" style="color:#888;font-weight:normal"></span></h1>
  <div id="log"></div>
  <form id="form">
    <textarea id="input" placeholder="Say something (Enter sends, Shift+Enter is a new line)"></textarea>
    <button id="send" type="submit">Send</button>
    <button id="stop" type="button" disabled>Stop</button>
  </form>
</main>
<aside>
  <strong>Settings</strong>
  <label for="system">System prompt</label><textarea id="system" rows="3"></textarea>
  <label for="temperature">Temperature</label><input id="temperature" type="number" min="0" max="2" step="0.1" value="0.7">
  <label for="top_p">Top p</label><input id="top_p" type="number" min="0.01" max="1" step="0.05" value="0.95">
  <label for="max_tokens">Max tokens</label><input id="max_tokens" type="number" min="1" value="256">
  <label for="seed">Seed (empty: random)</label><input id="seed" type="number">
  <label for="key">API key (if the server has one)</label><input id="key" type="password">
  <p><button id="clear" type="button">New conversation</button></p>
</aside>
<script>
const $ = (id) => document.getElementById(id);
const messages = [];
let controller = null;

function showModel() {
  const headers = $("key").value ? { "Authorization": "Bearer " + $("key").value } : {};
  fetch("/v1/models", { headers }).then(r => r.json()).then(j => { $("model").textContent = j.data ? j.data[0].id : ""; }).catch(() => {});
}
showModel();
$("key").addEventListener("change", showModel);

function bubble(role, text) {
  const div = document.createElement("div");
  div.className = "msg " + role;
  div.textContent = text;
  $("log").appendChild(div);
  $("log").scrollTop = $("log").scrollHeight;
  return div;
}

function number(id) { const v = $(id).value; return v === "" ? undefined : Number(v); }

async function send(text) {
  messages.push({ role: "user", content: text });
  bubble("user", text);
  const reply = bubble("assistant", "");
  reply.id = "reply-" + messages.length;
  const stats = document.createElement("div"); stats.className = "stats";
  const body = {
    messages: ($("system").value ? [{ role: "system", content: $("system").value }] : []).concat(messages),
    stream: true, stream_options: { include_usage: true },
    temperature: number("temperature"), top_p: number("top_p"), max_tokens: number("max_tokens"), seed: number("seed"),
  };
  const headers = { "Content-Type": "application/json" };
  if ($("key").value) headers["Authorization"] = "Bearer " + $("key").value;
  controller = new AbortController();
  $("send").disabled = true; $("stop").disabled = false;
  document.body.dataset.state = "streaming";
  const started = performance.now();
  let firstToken = null, content = "", finish = "";
  try {
    const response = await fetch("/v1/chat/completions", { method: "POST", headers, body: JSON.stringify(body), signal: controller.signal });
    if (!response.ok) {
      const error = await response.json().catch(() => ({}));
      throw new Error((error.error && error.error.message) || response.statusText);
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const line = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
        if (!line.startsWith("data: ")) continue;
        const data = line.slice(6);
        if (data === "[DONE]") continue;
        const chunk = JSON.parse(data);
        if (chunk.usage) stats.textContent = chunk.usage.completion_tokens + " tokens";
        for (const choice of chunk.choices || []) {
          if (choice.delta && choice.delta.content) {
            if (firstToken === null) firstToken = performance.now();
            content += choice.delta.content;
            reply.textContent = content;
            $("log").scrollTop = $("log").scrollHeight;
          }
          if (choice.finish_reason) finish = choice.finish_reason;
        }
      }
    }
    const seconds = (performance.now() - started) / 1000;
    stats.textContent += (stats.textContent ? ", " : "") + seconds.toFixed(1) + " s"
      + (firstToken ? ", first token after " + ((firstToken - started) / 1000).toFixed(2) + " s" : "") + ", " + finish;
  } catch (e) {
    if (e.name === "AbortError") { stats.textContent = "stopped"; }
    else { reply.classList.add("error"); reply.textContent = content + "\n[error] " + e.message; }
  }
  reply.appendChild(stats);
  messages.push({ role: "assistant", content });
  $("send").disabled = false; $("stop").disabled = true; controller = null;
  document.body.dataset.state = "done";
}

$("form").addEventListener("submit", (e) => {
  e.preventDefault();
  const text = $("input").value.trim();
  if (!text || controller) return;
  $("input").value = "";
  send(text);
});
$("input").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("form").requestSubmit(); }
});
$("stop").addEventListener("click", () => { if (controller) controller.abort(); });
$("clear").addEventListener("click", () => { messages.length = 0; $("log").innerHTML = ""; });

const params = new URLSearchParams(location.search);
if (params.get("seed")) $("seed").value = params.get("seed");
if (params.get("max_tokens")) $("max_tokens").value = params.get("max_tokens");
if (params.get("prompt") && params.get("send") === "1") send(params.get("prompt"));
</script>
</body>
</html>
"""#
}
