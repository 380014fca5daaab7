#!/usr/bin/env python3
"""End-to-end check of `tessera serve` with the official `openai` Python package, httpx and curl.

Starts the real server (the binary given by --tessera, default .build/release/tessera) on the default
model, drives every endpoint, checks each answer, and stops it with SIGTERM while a request is
streaming (graceful shutdown). A second server with --api-key checks authentication. Exits non-zero
on the first failed check, printing what was expected and what came back.

    pip install openai httpx
    python3 scripts/server/e2e_openai.py [--tessera PATH] [--model PATH] [--port 18080]
"""
import argparse
import atexit
import json
import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import openai

CHECKS = 0


def wait_for_abort(base, before, seconds=20):
    """The abort count once it has passed `before` and nothing runs (or the count at the deadline)."""
    deadline = time.time() + seconds
    aborts = before
    while time.time() < deadline:
        aborts = metric(base, "vllm:request_success_total", 'finished_reason="abort"') or 0
        if aborts > before and metric(base, "vllm:num_requests_running") == 0:
            break
        time.sleep(0.1)
    return aborts


def check(condition, what, detail=""):
    global CHECKS
    CHECKS += 1
    if not condition:
        print(f"FAIL: {what} {detail}", flush=True)
        sys.exit(1)
    print(f"ok   {what}", flush=True)


RUNNING = []


@atexit.register
def stop_servers():
    """A failed check exits at once; never leave a server behind holding its port."""
    for process in RUNNING:
        if process.poll() is None:
            process.kill()


class Server:
    """A `tessera serve` process, started and waited for until /health says 200."""

    def __init__(self, binary, port, extra=(), model=None):
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        args = [binary, "serve", "--port", str(port), "--threads", "2", *extra]
        if model:
            args += ["--model", model]
        self.log = open(f"/tmp/tessera-serve-{port}.log", "w")
        self.process = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        RUNNING.append(self.process)
        deadline = time.time() + 180
        saw_loading = False
        while time.time() < deadline:
            if self.process.poll() is not None:
                sys.exit(f"the server exited with {self.process.returncode}; see {self.log.name}")
            try:
                r = httpx.get(self.base + "/health", timeout=2)
                if r.status_code == 503:
                    saw_loading = True
                if r.status_code == 200:
                    if self.process.poll() is not None:  # another server answered on this port
                        sys.exit(f"the server exited with {self.process.returncode}; is port {port} taken? see {self.log.name}")
                    self.saw_loading = saw_loading
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        sys.exit("the server did not become healthy in 180 s")

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        return self.wait()

    def wait(self):
        code = self.process.wait(timeout=60)
        self.log.close()
        return code


def metric(base, name, labels_contain=""):
    text = httpx.get(base + "/metrics").text
    for line in text.splitlines():
        if line.startswith(name) and labels_contain in line and not line.startswith(name + "_"):
            return float(line.rsplit(" ", 1)[1])
    return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tessera", default=".build/release/tessera")
    parser.add_argument("--model", default=None)
    parser.add_argument("--port", type=int, default=18080)
    args = parser.parse_args()

    server = Server(args.tessera, args.port, model=args.model)
    base = server.base
    client = openai.OpenAI(base_url=base + "/v1", api_key="unused")

    # Models and health.
    models = client.models.list()
    name = models.data[0].id
    check(len(models.data) == 1 and name, "GET /v1/models lists the served model", name)
    check(httpx.get(base + "/health").status_code == 200, "GET /health is 200 once loaded")
    print(f"note: /health answered 503 while the model loaded: {'seen' if server.saw_loading else 'too quick to see'}"
          " (the route test checks the 503)", flush=True)

    # Chat, non-streaming and streaming, greedy: the same text.
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    plain = client.chat.completions.create(model=name, messages=messages, max_tokens=24, temperature=0)
    text = plain.choices[0].message.content
    check(plain.object == "chat.completion" and len(text) > 0, "chat completion", repr(text))
    check(plain.usage.completion_tokens > 0 and plain.usage.total_tokens == plain.usage.prompt_tokens + plain.usage.completion_tokens,
          "chat usage adds up", str(plain.usage))
    check(plain.choices[0].finish_reason in ("stop", "length"), "finish_reason", plain.choices[0].finish_reason)
    print(f"     chat reply: {text!r}")

    stream = client.chat.completions.create(model=name, messages=messages, max_tokens=24, temperature=0, stream=True,
                                            stream_options={"include_usage": True})
    chunks = list(stream)
    check(chunks[0].choices[0].delta.role == "assistant", "first chunk carries the role")
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    check(streamed == text, "streamed chat equals non-streamed", f"{streamed!r} vs {text!r}")
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    check(finishes == [plain.choices[0].finish_reason], "one final chunk with the finish reason", str(finishes))
    check(chunks[-1].usage is not None and chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == plain.usage.completion_tokens,
          "usage chunk last, with the same counts", str(chunks[-1].usage))

    # Completions, both ways.
    comp = client.completions.create(model=name, prompt="The capital of France is", max_tokens=16, temperature=0)
    ctext = comp.choices[0].text
    check(comp.object == "text_completion" and len(ctext) > 0, "completion", repr(ctext))
    cstream = "".join(c.choices[0].text for c in client.completions.create(
        model=name, prompt="The capital of France is", max_tokens=16, temperature=0, stream=True) if c.choices)
    check(cstream == ctext, "streamed completion equals non-streamed", f"{cstream!r} vs {ctext!r}")

    # Stop strings: stop at a word from the middle of the greedy text.
    words = ctext.split()
    check(len(words) >= 3, "the greedy completion has words to stop at", repr(ctext))
    stop = " " + words[2]
    stopped = client.completions.create(model=name, prompt="The capital of France is", max_tokens=16, temperature=0, stop=[stop])
    expected = ctext[: ctext.index(stop)]
    check(stopped.choices[0].text == expected and stopped.choices[0].finish_reason == "stop",
          "stop string ends the text before it", f"{stopped.choices[0].text!r} vs {expected!r}")

    # Seeds reproduce; n gives several choices. The second request finds the first one's prompt in the
    # prefix cache: its arithmetic is the same bit for bit, so the sampled text is too.
    kwargs = dict(model=name, messages=[{"role": "user", "content": "Tell me a story."}], max_tokens=20, temperature=1.0, seed=42, n=2)
    a = client.chat.completions.create(**kwargs)
    b = client.chat.completions.create(**kwargs)
    check(b.usage.prompt_tokens_details.cached_tokens > 0, "the repeated request hits the prefix cache",
          str(b.usage.prompt_tokens_details))
    ta = [c.message.content for c in a.choices]
    tb = [c.message.content for c in b.choices]
    check(ta == tb and len(ta) == 2, "same seed, same choices (n=2)", f"{ta} vs {tb}")
    check(ta[0] != ta[1], "n choices differ", str(ta))

    # Sampling parameters through extra_body (vLLM's names), logit_bias and logprobs.
    lp = client.chat.completions.create(model=name, messages=messages, max_tokens=5, temperature=0, logprobs=True, top_logprobs=3,
                                        extra_body={"top_k": 40, "min_p": 0.05, "repetition_penalty": 1.1})
    content = lp.choices[0].logprobs.content
    check(len(content) == lp.usage.completion_tokens and all(len(t.top_logprobs) == 3 for t in content)
          and all(t.logprob <= 0 for t in content), "logprobs with top_logprobs=3")
    banned = httpx.post(base + "/tokenize", json={"prompt": text.split()[0] if text.split() else "The", "add_special_tokens": False}).json()["tokens"][0]
    biased = client.chat.completions.create(model=name, messages=messages, max_tokens=8, temperature=0, logit_bias={str(banned): -100},
                                            logprobs=True)
    ids_seen = [httpx.post(base + "/tokenize", json={"prompt": t.token, "add_special_tokens": False}).json()["tokens"] for t in biased.choices[0].logprobs.content]
    check(all(banned not in ids for ids in ids_seen if len(ids) == 1), "logit_bias -100 bans a token")

    # max_completion_tokens (the newer name), and the presence/frequency penalties: they count generated
    # tokens only, so the first token is the greedy one and a repetitive answer changes.
    limited = client.chat.completions.create(model=name, messages=messages, max_completion_tokens=3, temperature=0,
                                             extra_body={"ignore_eos": True})
    check(limited.usage.completion_tokens == 3 and limited.choices[0].finish_reason == "length", "max_completion_tokens=3",
          str(limited.usage))
    def greedy_tokens(**kw):
        r = client.completions.create(model=name, prompt="Count: one, two, three,", max_tokens=24, temperature=0, logprobs=0,
                                      extra_body={"ignore_eos": True}, **kw)
        return r.choices[0].logprobs.tokens
    plain = greedy_tokens()
    penalised = greedy_tokens(frequency_penalty=2.0, presence_penalty=2.0)
    check(penalised[0] == plain[0] and penalised != plain and len(set(penalised)) >= len(set(plain)),
          "presence/frequency penalties act on the generated tokens only", f"{plain} vs {penalised}")
    expect_tools = None
    try:
        client.chat.completions.create(model=name, messages=messages, max_tokens=2,
                                       tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}])
    except openai.BadRequestError as e:
        expect_tools = e.body.get("param") if isinstance(e.body, dict) else None
    check(expect_tools == "tools", "tools (not supported) -> 400 naming the field, not silently ignored", str(expect_tools))

    # Tokenize / detokenize.
    tok = httpx.post(base + "/tokenize", json={"prompt": "Hello world"}).json()
    detok = httpx.post(base + "/detokenize", json={"tokens": tok["tokens"]}).json()
    check(tok["count"] == len(tok["tokens"]) and "Hello world" in detok["prompt"], "tokenize/detokenize round trip", str(detok))

    # Errors: each in OpenAI's shape, with the client's matching exception.
    def expect(exc, what, **kw):
        try:
            client.chat.completions.create(**{"model": name, "messages": messages, "max_tokens": 4, **kw})
        except exc as e:
            body = e.response.json()
            check("error" in body and "message" in body["error"], what, f"{e.status_code} {body['error']['message']}")
            return body["error"]
        check(False, what, "no error raised")

    expect(openai.BadRequestError, "temperature out of range -> 400", temperature=5)
    err = expect(openai.BadRequestError, "wrong type -> 400 naming the field", temperature="hot")
    check(err["param"] == "temperature", "the error names the field", str(err))
    expect(openai.NotFoundError, "unknown model -> 404", model="gpt-4o")
    err = expect(openai.BadRequestError, "prompt + max_tokens over the context -> 400", max_tokens=10 ** 6)
    check(err["code"] == "context_length_exceeded", "context error code", str(err))
    expect(openai.BadRequestError, "top_p = 0 -> 400", top_p=0)
    expect(openai.BadRequestError, "n = 0 -> 400", n=0)
    r = httpx.post(base + "/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
    check(r.status_code == 400 and r.json()["error"]["code"] == "invalid_json", "malformed JSON -> 400", r.text)
    r = httpx.post(base + "/v1/completions", content=b'{"prompt": "' + b"a" * (5 << 20) + b'"}', headers={"content-type": "application/json"})
    check(r.status_code == 413 and "error" in r.json(), "body too large -> 413", str(r.status_code))
    r = httpx.get(base + "/v1/nothing")
    check(r.status_code == 404 and "error" in r.json(), "unknown route -> 404 JSON", r.text)

    # curl, streaming.
    out = subprocess.run(["curl", "-sN", base + "/v1/chat/completions", "-H", "Content-Type: application/json", "-d",
                          json.dumps({"model": name, "messages": messages, "max_tokens": 8, "stream": True})],
                         capture_output=True, text=True, timeout=120).stdout
    check(out.startswith("data: {") and out.rstrip().endswith("data: [DONE]"), "curl streams SSE ending in [DONE]", out[-80:])
    out = subprocess.run(["curl", "-s", base + "/v1/completions", "-H", "Content-Type: application/json", "-d",
                          json.dumps({"prompt": "Hello", "max_tokens": 4})], capture_output=True, text=True, timeout=120).stdout
    check(json.loads(out)["usage"]["completion_tokens"] >= 1, "curl completion", out[:120])

    # A client that disconnects mid-stream: its request is cancelled (finished_reason="abort").
    aborts_before = metric(base, "vllm:request_success_total", 'finished_reason="abort"') or 0
    with httpx.stream("POST", base + "/v1/completions", json={"prompt": "Once upon a time", "max_tokens": 2000, "stream": True,
                                                             "ignore_eos": True}, timeout=60) as response:
        lines = 0
        for line in response.iter_lines():
            if line.startswith("data: "):
                lines += 1
            if lines == 3:
                break
    aborts = wait_for_abort(base, aborts_before)
    check(aborts == aborts_before + 1, "a disconnected stream is cancelled in the engine", f"aborts {aborts_before} -> {aborts}")
    generated = metric(base, "vllm:generation_tokens_total")
    check(generated is not None and generated < 1000, "and stops generating", f"{generated} tokens generated in all")

    # A client that gives up on a non-streaming request (a timeout) cancels it too, as vLLM aborts it.
    aborts_before, generated_before = aborts, generated
    try:
        httpx.post(base + "/v1/completions", json={"prompt": "Once upon a time", "max_tokens": 3000, "ignore_eos": True}, timeout=1.0)
    except httpx.TimeoutException:
        pass
    aborts = wait_for_abort(base, aborts_before)
    check(aborts == aborts_before + 1, "a non-streaming request whose client went away is cancelled", f"aborts {aborts_before} -> {aborts}")
    generated = metric(base, "vllm:generation_tokens_total")
    check(generated is not None and generated - generated_before < 2000, "and stops generating",
          f"{generated - generated_before} tokens generated for it")
    r = client.completions.create(model=name, prompt="Hello", max_tokens=2)
    check(r.usage.completion_tokens == 2, "the next request is served", str(r.usage))

    # Metrics with vLLM's names.
    text_metrics = httpx.get(base + "/metrics").text
    for m in ["vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc", "vllm:prompt_tokens_total",
              "vllm:generation_tokens_total", "vllm:request_success_total", "vllm:time_to_first_token_seconds_bucket",
              "vllm:inter_token_latency_seconds_bucket", "vllm:e2e_request_latency_seconds_bucket", "vllm:request_queue_time_seconds_bucket"]:
        check(m in text_metrics, f"/metrics has {m}")

    # Graceful shutdown: SIGTERM while a request streams; /health turns 503 (a readiness probe stops
    # routing here), the stream completes, the server exits 0.
    result = {}

    # 1,000 tokens (~4 s on Zen 4): long enough to be in flight when /health is asked 0.7 s in (200 once
    # finished within that on a quick moment of the machine, and the server had exited).
    def long_stream():
        s = client.completions.create(model=name, prompt="Once upon a time", max_tokens=1000, stream=True, extra_body={"ignore_eos": True})
        result["text"] = "".join(c.choices[0].text for c in s if c.choices)
        result["done"] = True

    # And a non-streaming one: the drain must not take the server's closing for a client's going away.
    def long_completion():
        r = client.completions.create(model=name, prompt="Once upon a time", max_tokens=600, extra_body={"ignore_eos": True})
        result["completion_tokens"] = r.usage.completion_tokens

    t = threading.Thread(target=long_stream)
    t.start()
    t2 = threading.Thread(target=long_completion)
    t2.start()
    time.sleep(0.5)
    server.process.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    try:
        draining = httpx.get(base + "/health", timeout=5)
        check(draining.status_code == 503 and draining.json()["error"]["code"] == "shutting_down",
              "GET /health is 503 while shutting down", draining.text)
    except httpx.HTTPError as e:
        check(False, "GET /health answers while shutting down", repr(e))
    code = server.wait()
    t.join(timeout=60)
    check(code == 0, "SIGTERM: the server exits 0", str(code))
    check(result.get("done") and len(result.get("text", "")) > 0, "the in-flight stream finished during shutdown")
    t2.join(timeout=60)
    check(result.get("completion_tokens") == 600, "the in-flight non-streaming request finished during shutdown",
          str(result.get("completion_tokens")))

    # API keys.
    keyed = Server(args.tessera, args.port + 1, extra=["--api-key", "sekret"], model=args.model)
    try:
        openai.OpenAI(base_url=keyed.base + "/v1", api_key="wrong").models.list()
        check(False, "wrong key -> 401")
    except openai.AuthenticationError as e:
        check(e.status_code == 401, "wrong key -> 401")
    ok = openai.OpenAI(base_url=keyed.base + "/v1", api_key="sekret").completions.create(model=name, prompt="Hi", max_tokens=2)
    check(ok.usage.completion_tokens >= 1, "right key -> 200")
    check(keyed.stop() == 0, "second server exits 0")
    print(f"all {CHECKS} checks passed")


if __name__ == "__main__":
    main()
