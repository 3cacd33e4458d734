// Preloaded into the stdio-to-HTTP bridge (supergateway) by
// tests/suite/clients.rs with NODE_OPTIONS=--require: every TCP listener the
// process opens binds to 127.0.0.1 only. supergateway has no host option and
// would otherwise listen on all interfaces. The test also checks
// /proc/net/tcp* that nothing listens elsewhere on the port.
'use strict';
const net = require('node:net');
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const first = args[0];
  if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) {
    if (typeof args[1] === 'string') args[1] = '127.0.0.1';
    else args.splice(1, 0, '127.0.0.1');
  } else if (first && typeof first === 'object' && first.path === undefined) {
    args[0] = { ...first, host: '127.0.0.1' };
  }
  return listen.apply(this, args);
};
