#!/bin/sh
# Not a framed-v1 script: prints text where a frame is expected, then waits.
echo "hello, I am not a frame"
sleep 30
