/*
 * check_link.c - covers daemon/link.c: handshake and encrypted messages
 * over real loopback TCP on a libuv loop; refusals reach the dialer with
 * their reason; a peer that stalls mid-handshake is cut off.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "cert.h"
#include "err.h"
#include "link.h"
#include "suites.h"

typedef struct side {
	int established;
	int closed;
	int close_code;
	char why[300];
	int msgs;
	char last[64];
	int echo;      /* server: echo each message back */
	int close_after; /* client: close after this many replies */
} side;

typedef struct fixture {
	uv_loop_t loop;
	uv_tcp_t listener;
	uint8_t hub_pk[QP_KEY_LEN], hub_sk[QP_SKEY_LEN];
	uint8_t dev_pk[QP_KEY_LEN], dev_sk[QP_SKEY_LEN];
	uint8_t *cert;
	size_t certlen;
	char addr[64];
	side srv, cli;
	qp_link *slink;
	const char *refuse; /* check_peer refuses with this reason */
	qp_link_opts sopts;
} fixture;

static void s_established(qp_link *l, void *ud)
{
	(void)l;
	((side *)ud)->established = 1;
}

static void s_message(qp_link *l, const uint8_t *m, size_t n, void *ud)
{
	side *sd = ud;
	sd->msgs++;
	snprintf(sd->last, sizeof(sd->last), "%.*s", (int)n, (const char *)m);
	if (sd->echo)
		ck_assert_int_eq(qp_link_send(l, m, n), 0);
	else if (sd->close_after && sd->msgs >= sd->close_after)
		qp_link_close(l, "done");
}

static void s_closed(qp_link *l, int code, const char *why, void *ud)
{
	side *sd = ud;
	(void)l;
	sd->closed = 1;
	sd->close_code = code;
	snprintf(sd->why, sizeof(sd->why), "%s", why);
}

static const qp_link_cbs cbs = {s_established, s_message, s_closed};

static int check_peer(void *ctx, const uint8_t pk[QP_KEY_LEN],
		      const uint8_t *cert, size_t certlen, char *why,
		      size_t whylen)
{
	fixture *f = ctx;
	qp_cert c;
	int rc;
	(void)pk;
	if (f->refuse != NULL) {
		snprintf(why, whylen, "%s", f->refuse);
		return QP_EAUTH;
	}
	rc = qp_cert_verify(cert, certlen, f->hub_pk, 1000, &c);
	if (rc != 0)
		snprintf(why, whylen, "%s", qp_strerror(rc));
	return rc;
}

static void on_conn(uv_stream_t *s, int status)
{
	fixture *f = s->data;
	ck_assert_int_eq(status, 0);
	ck_assert_int_eq(qp_link_accept(s, f->hub_pk, f->hub_sk, check_peer, f,
					&f->sopts, &cbs, &f->srv, NULL, &f->slink),
			 0);
}

static void fixture_init(fixture *f)
{
	struct sockaddr_in sa;
	int salen = sizeof(sa);
	qp_cert c;

	memset(f, 0, sizeof(*f));
	ck_assert_int_eq(qp_crypto_init(), 0);
	qp_key_generate(f->hub_pk, f->hub_sk);
	qp_key_generate(f->dev_pk, f->dev_sk);
	memset(&c, 0, sizeof(c));
	c.version = QP_CERT_VERSION;
	c.role = QP_ROLE_TECHNICIAN;
	memcpy(c.device, f->dev_pk, QP_KEY_LEN);
	memcpy(c.issuer, f->hub_pk, QP_KEY_LEN);
	c.serial = 1;
	c.issued_at = 100;
	strcpy(c.name, "tablet 1");
	c.norgs = 1;
	memset(c.orgs[0], 7, QP_UUID_LEN);
	ck_assert_int_eq(qp_cert_build(&c, f->hub_sk, &f->cert, &f->certlen), 0);

	uv_loop_init(&f->loop);
	uv_tcp_init(&f->loop, &f->listener);
	f->listener.data = f;
	uv_ip4_addr("127.0.0.1", 0, &sa);
	ck_assert_int_eq(uv_tcp_bind(&f->listener, (struct sockaddr *)&sa, 0), 0);
	ck_assert_int_eq(uv_listen((uv_stream_t *)&f->listener, 16, on_conn), 0);
	uv_tcp_getsockname(&f->listener, (struct sockaddr *)&sa, &salen);
	snprintf(f->addr, sizeof(f->addr), "127.0.0.1:%u", ntohs(sa.sin_port));
}

/* Run until both sides closed (or a bound of iterations), then close the
 * listener and require the loop to end with nothing left open. */
static void fixture_run_and_close(fixture *f)
{
	for (int i = 0; i < 20000 && !(f->cli.closed && (f->srv.closed || !f->slink)); i++)
		uv_run(&f->loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&f->listener, NULL);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	ck_assert_int_eq(uv_loop_close(&f->loop), 0);
	free(f->cert);
}

START_TEST(link_roundtrip)
{
	fixture f;
	qp_link *cl;
	fixture_init(&f);
	f.srv.echo = 1;
	f.cli.close_after = 3;
	ck_assert_int_eq(qp_link_dial(&f.loop, f.addr, f.dev_pk, f.dev_sk,
				      f.hub_pk, f.cert, f.certlen, NULL, &cbs,
				      &f.cli, NULL, &cl), 0);
	while (!f.cli.established)
		uv_run(&f.loop, UV_RUN_ONCE);
	ck_assert_mem_eq(qp_link_peer(cl), f.hub_pk, QP_KEY_LEN);
	for (int i = 0; i < 3; i++) {
		char m[16];
		snprintf(m, sizeof(m), "msg %d", i);
		ck_assert_int_eq(qp_link_send(cl, (uint8_t *)m, strlen(m)), 0);
	}
	fixture_run_and_close(&f);
	ck_assert_int_eq(f.srv.established, 1);
	ck_assert_int_eq(f.srv.msgs, 3);
	ck_assert_int_eq(f.cli.msgs, 3);
	ck_assert_str_eq(f.cli.last, "msg 2");
	ck_assert_int_eq(f.cli.close_code, 0);
	ck_assert_int_eq(f.srv.close_code, 0);
	ck_assert_str_eq(f.srv.why, "peer closed the link");
}
END_TEST

START_TEST(link_wrong_hub_key)
{
	fixture f;
	qp_link *cl;
	uint8_t other_pk[QP_KEY_LEN], other_sk[QP_SKEY_LEN];
	fixture_init(&f);
	qp_key_generate(other_pk, other_sk);
	ck_assert_int_eq(qp_link_dial(&f.loop, f.addr, f.dev_pk, f.dev_sk,
				      other_pk, f.cert, f.certlen, NULL, &cbs,
				      &f.cli, NULL, &cl), 0);
	fixture_run_and_close(&f);
	ck_assert_int_eq(f.cli.established, 0);
	ck_assert_int_ne(f.cli.close_code, 0);
	ck_assert_ptr_nonnull(strstr(f.cli.why, "pinned"));
	ck_assert_int_eq(f.srv.established, 0);
}
END_TEST

START_TEST(link_refused_with_reason)
{
	fixture f;
	qp_link *cl;
	fixture_init(&f);
	f.refuse = "certificate expired";
	ck_assert_int_eq(qp_link_dial(&f.loop, f.addr, f.dev_pk, f.dev_sk,
				      f.hub_pk, f.cert, f.certlen, NULL, &cbs,
				      &f.cli, NULL, &cl), 0);
	fixture_run_and_close(&f);
	ck_assert_int_eq(f.cli.established, 0);
	ck_assert_int_eq(f.cli.close_code, QP_EAUTH);
	ck_assert_str_eq(f.cli.why, "hub refused: certificate expired");
	ck_assert_ptr_nonnull(strstr(f.srv.why, "certificate expired"));
}
END_TEST

START_TEST(link_connection_refused)
{
	fixture f;
	qp_link *cl;
	char addr[64];
	fixture_init(&f);
	/* A port nobody listens on: close our listener and dial its port. */
	snprintf(addr, sizeof(addr), "%s", f.addr);
	uv_close((uv_handle_t *)&f.listener, NULL);
	uv_run(&f.loop, UV_RUN_NOWAIT);
	ck_assert_int_eq(qp_link_dial(&f.loop, addr, f.dev_pk, f.dev_sk,
				      f.hub_pk, f.cert, f.certlen, NULL, &cbs,
				      &f.cli, NULL, &cl), 0);
	uv_run(&f.loop, UV_RUN_DEFAULT);
	ck_assert_int_eq(uv_loop_close(&f.loop), 0);
	free(f.cert);
	ck_assert_int_eq(f.cli.closed, 1);
	ck_assert_int_eq(f.cli.close_code, UV_ECONNREFUSED);
	ck_assert_str_eq(f.cli.why, "connection refused");
}
END_TEST

/* A raw TCP client that connects and says nothing. */
static void on_raw_connect(uv_connect_t *req, int status)
{
	(void)req;
	ck_assert_int_eq(status, 0);
}

START_TEST(link_stall_times_out)
{
	fixture f;
	uv_tcp_t raw;
	uv_connect_t req;
	struct sockaddr_in sa;
	char host[32];
	unsigned port;
	fixture_init(&f);
	f.sopts.hs_timeout_ms = 300;
	sscanf(f.addr, "%31[^:]:%u", host, &port);
	uv_ip4_addr(host, (int)port, &sa);
	uv_tcp_init(&f.loop, &raw);
	ck_assert_int_eq(uv_tcp_connect(&req, &raw, (struct sockaddr *)&sa, on_raw_connect), 0);
	while (!f.srv.closed)
		uv_run(&f.loop, UV_RUN_ONCE);
	ck_assert_int_eq(f.srv.close_code, QP_ETIMEDOUT);
	ck_assert_str_eq(f.srv.why, "handshake timed out");
	uv_close((uv_handle_t *)&raw, NULL);
	f.cli.closed = 1;
	fixture_run_and_close(&f);
}
END_TEST

Suite *suite_link(void)
{
	Suite *s = suite_create("link");
	TCase *tc = tcase_create("link");
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, link_roundtrip);
	tcase_add_test(tc, link_wrong_hub_key);
	tcase_add_test(tc, link_refused_with_reason);
	tcase_add_test(tc, link_connection_refused);
	tcase_add_test(tc, link_stall_times_out);
	suite_add_tcase(s, tc);
	return s;
}
