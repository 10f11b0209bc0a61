/* SPDX-License-Identifier: MIT */
/* The epoll set and the agent's clock; see loop.h. */
#include <errno.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"

static int epfd = -1;

int loop_open(void)
{
	epfd = epoll_create1(EPOLL_CLOEXEC);
	return epfd < 0 ? -errno : 0;
}

void loop_close(void)
{
	if (epfd >= 0)
		close(epfd);
	epfd = -1;
}

/* CPU time of the turn under way (since epoll_wait returned), and the longest so far. */
static long long turn_start_us = -1, turn_max_us;

static long long cpu_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

int loop_wait(struct epoll_event *evs, int max)
{
	int n;

	if (turn_start_us >= 0 && cpu_us() - turn_start_us > turn_max_us)
		turn_max_us = cpu_us() - turn_start_us;
	n = epoll_wait(epfd, evs, max, -1);
	turn_start_us = cpu_us();
	return n;
}

long long loop_turn_max_us(void)
{
	return turn_max_us;
}

long long loop_turn_cpu_us(void)
{
	return turn_start_us >= 0 ? cpu_us() - turn_start_us : 0;
}

long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

int ep_add(int fd, struct evsrc *ev, int type, void *p, int idx, unsigned events)
{
	struct epoll_event e = {.events = events, .data.ptr = ev};

	ev->type = type;
	ev->p = p;
	ev->idx = idx;
	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e) < 0 ? -errno : 0;
}

int ep_mod(int fd, struct evsrc *ev, unsigned events)
{
	struct epoll_event e = {.events = events, .data.ptr = ev};

	return epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &e) < 0 ? -errno : 0;
}

void ep_del(int fd)
{
	epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
}

void timerfd_at(int fd, long long at_ms)
{
	struct itimerspec its = {0};
	long long d;

	if (at_ms) {
		d = at_ms - now_ms();
		if (d < 1)
			d = 1;
		its.it_value.tv_sec = d / 1000;
		its.it_value.tv_nsec = (d % 1000) * 1000000;
	}
	timerfd_settime(fd, 0, &its, NULL);
}

void timerfd_every(int fd, int ms)
{
	struct itimerspec its = {.it_interval.tv_sec = ms / 1000,
				 .it_interval.tv_nsec = (ms % 1000) * 1000000L,
				 .it_value.tv_sec = ms / 1000,
				 .it_value.tv_nsec = (ms % 1000) * 1000000L};

	timerfd_settime(fd, 0, &its, NULL);
}

int ep_ticker(struct evsrc *ev, int type, void *p, int idx, int ms, const char *what)
{
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);

	if (fd < 0 || ep_add(fd, ev, type, p, idx, EPOLLIN)) {
		log_warn("%s: timerfd", what);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	timerfd_every(fd, ms);
	return fd;
}
