/**
 * metamon-gemma settings for the local Pokémon Showdown server.
 *
 * Only overrides: Showdown merges this file over its config/config-example.js defaults.
 * `python -m metamon.server start` copies it to node_modules/pokemon-showdown/config/config.js
 * and always passes the port on the command line (without a port argument the optional
 * `cloud-env` package makes Showdown bind 0.0.0.0, ignoring `bindaddress`).
 *
 * Per-process settings come from environment variables that metamon.server sets:
 *   METAMON_BIND_ADDRESS    listen address (default 127.0.0.1; loopback only unless you change it)
 *   METAMON_SIMULATORS      simulator child processes (default 1; 2 helps on >= 2 free cores)
 *   METAMON_LOG_CHALLENGES  "1" writes logs/YYYY-MM/<format>/<date>/<room>.log.json per battle
 */
'use strict';

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
