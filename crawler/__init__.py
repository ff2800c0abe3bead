"""Scrapy project: spiders hold site logic; middlewares, pipelines and settings do one thing each."""
