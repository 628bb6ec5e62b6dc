#!/usr/bin/env node
'use strict';
// alsa-capture holds one libuv threadpool thread per open device for its whole life.
process.env.UV_THREADPOOL_SIZE = process.env.UV_THREADPOOL_SIZE || '16';
require('../dist/src/main.js');
