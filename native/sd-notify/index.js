'use strict';
module.exports = require('./build/Release/sd_notify.node');
