/* SPDX-License-Identifier: MIT */
/*
 * check_port_free, which the agent runs before it starts a service: it
 * passes only when it could check (issue 17, item 13: a failed socket()
 * used to pass), and names who to ask when the address is taken.  Runs in
 * a private network namespace (the runner unshares it).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "listen.h"

static void addr4(struct listen_addr *la, unsigned port)
{
	struct sockaddr_in *sin = (void *)&la->ss;

	memset(la, 0, sizeof(*la));
	sin->sin_family = AF_INET;
	sin->sin_port = htons(port);
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	la->len = sizeof(*sin);
	snprintf(la->text, sizeof(la->text), "127.0.0.1:%u", port);
}

static void test_free_port_passes(void **state)
{
	struct listen_addr la;
	char err[256] = "";

	(void)state;
	addr4(&la, 18090);
	assert_int_equal(check_port_free(&la, err, sizeof(err)), 0);
}

static void test_taken_port_names_ss(void **state)
{
	struct listen_addr la;
	char err[256] = "";
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	(void)state;
	addr4(&la, 18091);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&la.ss, la.len), 0);
	assert_int_equal(listen(fd, 1), 0);
	assert_int_equal(check_port_free(&la, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "address in use by another process"));
	assert_non_null(strstr(err, "sport = :18091"));
	close(fd);
}

/* A family the kernel cannot make a socket of (as AF_INET6 on ipv6.disable=1). */
static void test_socket_failure_fails(void **state)
{
	struct listen_addr la;
	char err[256] = "";

	(void)state;
	addr4(&la, 18092);
	la.ss.ss_family = AF_MAX + 1;
	assert_int_equal(check_port_free(&la, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "cannot check the address: socket:"));
	assert_non_null(strstr(err, "127.0.0.1:18092"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_free_port_passes),
	    cmocka_unit_test(test_taken_port_names_ss),
	    cmocka_unit_test(test_socket_failure_fails),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
