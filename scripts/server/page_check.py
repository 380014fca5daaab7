#!/usr/bin/env python3
"""The chat page in a real browser: headless Chromium (Debian's chromium and chromium-driver) driven by
Selenium. Types a message, sends it, waits for the streamed reply, checks it equals the API's answer
for the same settings, stops a long reply midway with the Stop button, and saves a screenshot.

    apt-get install chromium chromium-driver && pip install selenium httpx openai
    python3 scripts/server/page_check.py [--screenshot docs/images/chat-page.png]
"""
import argparse
import os
import sys
import time

import httpx
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e_openai import Server, check  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tessera", default=".build/release/tessera")
    parser.add_argument("--model", default=None)
    parser.add_argument("--port", type=int, default=18095)
    parser.add_argument("--screenshot", default="/tmp/tessera-chat-page.png")
    args = parser.parse_args()

    server = Server(args.tessera, args.port, model=args.model)
    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1100,700"):
        options.add_argument(flag)
    options.binary_location = "/usr/bin/chromium"
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.get(server.base + "/")
        wait = WebDriverWait(driver, 120)
        wait.until(lambda d: d.find_element(By.ID, "model").text != "")
        check("SmolLM2" in driver.find_element(By.ID, "model").text or driver.find_element(By.ID, "model").text,
              "the page shows the served model", driver.find_element(By.ID, "model").text)

        # Greedy settings, so the page's reply can be compared with the API's.
        for field, value in (("temperature", "0"), ("max_tokens", "24")):
            element = driver.find_element(By.ID, field)
            element.clear()
            element.send_keys(value)
        question = "What is the capital of France?"
        driver.find_element(By.ID, "input").send_keys(question)
        driver.find_element(By.ID, "send").click()
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "done")
        reply = driver.find_element(By.ID, "reply-1")
        stats = reply.find_element(By.CLASS_NAME, "stats").text
        text = reply.text[: -len(stats)].rstrip("\n") if stats else reply.text
        api = httpx.post(server.base + "/v1/chat/completions", timeout=120, json={
            "messages": [{"role": "user", "content": question}], "max_tokens": 24, "temperature": 0, "top_p": 0.95}).json()
        expected = api["choices"][0]["message"]["content"]
        check(text.strip() == expected.strip(), "the streamed reply on the page equals the API's", f"{text!r} vs {expected!r}")
        check("tokens" in stats and "first token after" in stats, "the page shows tokens and timing", stats)

        # Stop: a long reply, stopped once it has started.
        element = driver.find_element(By.ID, "max_tokens")
        element.clear()
        element.send_keys("2000")
        driver.find_element(By.ID, "input").send_keys("Write a very long story about a dragon.")
        driver.find_element(By.ID, "send").click()
        wait.until(lambda d: len(d.find_element(By.ID, "reply-3").text) > 20)
        driver.find_element(By.ID, "stop").click()
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "done")
        check("stopped" in driver.find_element(By.ID, "reply-3").text, "Stop ends the reply")
        deadline = time.time() + 20
        while time.time() < deadline and 'finished_reason="abort"' not in httpx.get(server.base + "/metrics").text:
            time.sleep(0.2)
        check('finished_reason="abort"' in httpx.get(server.base + "/metrics").text, "and cancels the request on the server")
        driver.save_screenshot(args.screenshot)
        print("screenshot:", args.screenshot)
    finally:
        driver.quit()
        code = server.stop()
    check(code == 0, "server exits 0")


if __name__ == "__main__":
    main()
