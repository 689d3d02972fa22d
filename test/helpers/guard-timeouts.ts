/**
 * The timeout for device calls (GSP RPCs, boot, mailbox, scrub) in rigs whose tests are not about timeouts. It only
 * keeps a hung device from hanging the suite: a loaded shared machine answers slowly, which is not a failure of
 * the behaviour under test (a 5 s GSP boot timeout failed whole files at load 14 on 2 cores). Tests that are about
 * a timeout set their own, short one, on the call that must time out.
 */
export const RPC_GUARD_MS = 60_000;
