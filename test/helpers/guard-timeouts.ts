/**
 * The timeout for device calls (GSP RPCs, boot, mailbox, scrub) in rigs whose tests are not about timeouts. It only
 * keeps a hung device from hanging the suite: a loaded shared machine answers slowly, which is not a failure of
 * the behaviour under test (a 5 s GSP boot timeout failed whole files at load 14 on 2 cores). Tests that are about
 * a timeout set their own, short one, on the call that must time out.
 */
export const RPC_GUARD_MS = 60_000;

/**
 * A migration downtime limit that cannot bind, for tests of what a migration moves, cancels or refuses for other
 * reasons. The engine prices the stop from what it measures (the last dirty scan, RPC round trips); on a loaded
 * shared machine that price reached 623 ms against the default 300 ms limit, and the migration then refuses — correct
 * behaviour, but not the behaviour those tests are about. Tests of the refusal itself inject the stop cost instead
 * (policy.fixedStopMs, the floor of the price) so their verdict does not depend on the host either;
 * bench:migrate measures real downtimes against a real limit.
 */
export const NO_DOWNTIME_LIMIT_MS = 600_000;
