// Preloaded into every Node process LocalStack starts (NODE_OPTIONS=--require): its Kinesis
// helper (kinesis-local) listens on every interface and has no option for the address. Each
// server that would listen without a host, or on a wildcard host, listens on 127.0.0.1 instead.
'use strict';
const net = require('net');
const WILDCARD = new Set([undefined, null, '', '0.0.0.0', '::', '::0']);
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const first = args[0];
  if (first !== null && typeof first === 'object' && !Array.isArray(first)) {
    if (first.path === undefined && WILDCARD.has(first.host)) {
      args[0] = { ...first, host: '127.0.0.1' };
    }
  } else if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) {
    if (typeof args[1] === 'string') {
      if (WILDCARD.has(args[1])) args[1] = '127.0.0.1';
    } else {
      args.splice(1, 0, '127.0.0.1');
    }
  }
  return listen.apply(this, args);
};
