"""Two crawler processes sharing one frontier in a real redis-server crawl every page exactly once."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections import Counter

import pytest
import redis
from scrapy import FormRequest
from scrapy.utils.request import request_from_dict

from crawler import redis_json
from demo.replay.pages import synthetic_pages
from demo.replay.wiki import WikiReplay
from tests.crawl_util import crawl_config, records, scrapy_cmd, scrapy_env
from tests.util import ROOT, free_port, unavailable

PAGES = 200


@pytest.fixture
def redis_url(tmp_path):
    binary = shutil.which("redis-server")
    if binary is None:
        unavailable("redis-server", "`make system` installs it")
    port = free_port()
    server = subprocess.Popen([binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                               "--appendonly", "no", "--dir", str(tmp_path)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    yield url
    server.terminate()
    server.wait(10)


def test_two_workers_share_one_frontier(tmp_path, redis_url):
    pages = synthetic_pages(PAGES)
    titles = tmp_path / "titles.txt"
    titles.write_text("\n".join(p.title for p in pages) + "\n", encoding="utf-8")
    with WikiReplay(pages, delay=0.02) as server:
        workers = []
        for name in ("a", "b"):  # two "machines": each its own data folder, one Redis
            folder = tmp_path / name
            folder.mkdir()
            config = crawl_config(folder, server.api, titles, concurrency_per_domain=2, redis_idle_seconds=1)
            workers.append(subprocess.Popen(scrapy_cmd("bgwiki"), cwd=ROOT,
                                            env=scrapy_env(config, REDIS_URL=redis_url),
                                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        outputs = [w.communicate(timeout=120) for w in workers]
        parse_calls = server.wiki.counts["action=parse"]
    for worker, (_, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err[-3000:]
        assert "scrapy_redis.scheduler.Scheduler" in err or "scheduler/enqueued/redis" in err
    got = {name: records(tmp_path / name / "data") for name in ("a", "b")}
    assert all(got.values()), {k: len(v) for k, v in got.items()}  # both did part of the work
    assert Counter(r["title"] for v in got.values() for r in v) == Counter(p.title for p in pages)
    assert parse_calls == PAGES  # one fetch per page between the two
    client = redis.Redis.from_url(redis_url)
    assert client.exists("bgwiki:dupefilter")  # SCHEDULER_PERSIST: the shared state is kept
    assert client.zcard("bgwiki:requests") == 0  # the shared priority queue was drained


def test_requests_travel_through_redis_as_json():
    request = FormRequest("http://127.0.0.1/w/api.php", formdata={"titles": "Рила|Пирин"},
                          meta={"pages": 2, "dont_obey_robotstxt": True})
    encoded = redis_json.dumps(request.to_dict())
    assert isinstance(encoded, str) and encoded.startswith("{")  # JSON, not pickle
    back = request_from_dict(redis_json.loads(encoded))
    assert type(back) is FormRequest and back.body == request.body and back.method == "POST"
    assert back.meta == request.meta and back.headers == request.headers
