/**
 * metamon-gemma settings for the local Pokémon Showdown server.
 *
 * Only overrides: Showdown merges this file over its config/config-example.js defaults.
 * `python -m metamon.server start` always passes the port on the command line (without a port
 * argument the optional `cloud-env` package makes Showdown bind 0.0.0.0, ignoring `bindaddress`).
 *
 * How Showdown reads this file without a copy: Showdown loads its settings with
 * require('<its package>/config/config.js') and has no option for another path. Copying this file
 * there raced with other starts from the same install (a server reading a half-written copy falls
 * back to Showdown's defaults: 0.0.0.0 and open REPL sockets). Instead `metamon.server` starts
 * `node --require <this file> pokemon-showdown start ...`: Node preloads this file in the server
 * and in every process the server forks (they inherit the flag), and the hook below makes any
 * require() of a Showdown package's config/config.js load this file. The install is never written.
 *
 * Per-process settings come from environment variables that metamon.server sets:
 *   METAMON_BIND_ADDRESS    listen address (default 127.0.0.1; loopback only unless you change it)
 *   METAMON_SIMULATORS      simulator child processes (default 1; 2 helps on >= 2 free cores)
 *   METAMON_LOG_CHALLENGES  "1" writes logs/YYYY-MM/<format>/<date>/<room>.log.json per battle
 */
'use strict';

const Module = require('module');
const fs = require('fs');
const path = require('path');

function isShowdownConfig(request) {
	return typeof request === 'string' && path.isAbsolute(request) && request !== __filename &&
		path.basename(request) === 'config.js' && path.basename(path.dirname(request)) === 'config' &&
		fs.existsSync(path.join(path.dirname(request), 'config-example.js'));
}

if (!Module._resolveFilename.metamonConfig) {
	const resolve = Module._resolveFilename;
	const redirect = function (request, ...rest) {
		return isShowdownConfig(request) ? __filename : resolve.call(this, request, ...rest);
	};
	redirect.metamonConfig = __filename;
	Module._resolveFilename = redirect;
}

exports.port = 8000;
exports.bindaddress = process.env.METAMON_BIND_ADDRESS || '127.0.0.1';

// A private research server: no login server, no throttles, no guest checks, no IP checks.
exports.nothrottle = true;
exports.noguestsecurity = true; // poke-env logs in with `/trn NAME,0,` (no password)
exports.noipchecks = true;
exports.backdoor = false;
exports.crashguardemail = null;

// Quiet rooms and no background helpers we do not use.
exports.reportjoins = false;
exports.reportbattles = false;
exports.reportbattlejoins = false;
exports.watchconfig = false;
exports.repl = false;
exports.logchallenges = process.env.METAMON_LOG_CHALLENGES === '1';

exports.subprocesses = {
	network: 1,
	simulator: parseInt(process.env.METAMON_SIMULATORS || '1', 10),
	validator: 1,
	verifier: 1,
	localartemis: 0,
	remoteartemis: 0,
	friends: 0,
	chatdb: 0,
	modlog: 0,
	pm: 0,
	battlesearch: 0,
	datasearch: 0,
};
