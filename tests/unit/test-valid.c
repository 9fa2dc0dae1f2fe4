/*
 * test-valid.c — the checks that keep EC2's answers and a hand-edited
 * state file out of HAProxy admin commands and the generated backends file
 * (util.c: valid_instance_id, valid_ip, valid_ip_port).
 */
#include <stdio.h>

#include "unit.h"
#include "util.h"

static void
test_instance_id(void)
{
	CHECK(valid_instance_id("i-0123abcd"));
	CHECK(valid_instance_id("i-0a1b2c3d4e5f60718"));
	CHECK(!valid_instance_id(NULL));
	CHECK(!valid_instance_id(""));
	CHECK(!valid_instance_id("i-"));
	CHECK(!valid_instance_id("i-0123abc"));			/* 7 digits */
	CHECK(!valid_instance_id("i-0a1b2c3d4e5f607189"));	/* 18 digits */
	CHECK(!valid_instance_id("i-0A1B2C3D"));		/* upper case */
	CHECK(!valid_instance_id("i-0123abcd;show info"));
	CHECK(!valid_instance_id("i-0123abcd\nbackend x"));
	CHECK(!valid_instance_id("web1"));
}

static void
test_ip(void)
{
	CHECK(valid_ip("10.0.1.11"));
	CHECK(valid_ip("fd00::1"));
	CHECK(!valid_ip(NULL));
	CHECK(!valid_ip(""));
	CHECK(!valid_ip("10.0.1"));
	CHECK(!valid_ip("10.0.1.11 check"));
	CHECK(!valid_ip("127.0.0.1\nbackend injected"));
	CHECK(!valid_ip("127.0.0.1;disable server be/x"));
	CHECK(!valid_ip("ip-10-0-1-11.ec2.internal"));
}

static void
test_ip_port(void)
{
	CHECK(valid_ip_port("10.0.1.11:8080"));
	CHECK(valid_ip_port("[fd00::1]:8080"));
	CHECK(!valid_ip_port(NULL));
	CHECK(!valid_ip_port("10.0.1.11"));
	CHECK(!valid_ip_port("10.0.1.11:"));
	CHECK(!valid_ip_port("10.0.1.11:0"));
	CHECK(!valid_ip_port("10.0.1.11:65536"));
	CHECK(!valid_ip_port("10.0.1.11:80x"));
	CHECK(!valid_ip_port("fd00::1:8080"));		/* IPv6 needs brackets */
	CHECK(!valid_ip_port("[]:80"));
	CHECK(!valid_ip_port("10.0.1.11;x:80"));
	CHECK(!valid_ip_port("host.example:80"));
}

int
main(void)
{
	RUN(test_instance_id);
	RUN(test_ip);
	RUN(test_ip_port);
	return unit_summary();
}
