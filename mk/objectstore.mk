# Object-store test set-up: the jars that let Spark 3.5.1 (Hadoop 3.3.4 client) talk S3A, and the S3Proxy server
# the tests start on loopback. Include from the Makefile (`include mk/objectstore.mk`) and depend on `objectstore-jars`.
# Every jar comes from Maven Central by exact URL and is checked against the sha256 recorded here (the sha1 that
# Central publishes beside each jar matched when these were recorded).
#
#   make objectstore-jars        -> .cache/jars/*.jar (gitignored; ~420 MB, downloaded once)
#   make objectstore-venv-extras -> the moto fallback server into $(VENV) (s3fs & co. are in requirements.lock)

MAVEN_CENTRAL ?= https://repo1.maven.org/maven2
JAR_CACHE ?= .cache/jars

# coordinates (group/artifact/version/file) and sha256
OBJECTSTORE_JARS := \
	org/apache/hadoop/hadoop-aws/3.3.4/hadoop-aws-3.3.4.jar \
	com/amazonaws/aws-java-sdk-bundle/1.12.262/aws-java-sdk-bundle-1.12.262.jar \
	org/wildfly/openssl/wildfly-openssl/1.0.7.Final/wildfly-openssl-1.0.7.Final.jar \
	org/gaul/s3proxy/2.6.0/s3proxy-2.6.0-jar-with-dependencies.jar \
	org/gaul/s3proxy/4.0.0/s3proxy-4.0.0-jar-with-dependencies.jar

SHA256_hadoop-aws-3.3.4.jar := 53f9ae03c681a30a50aa17524bd9790ab596b28481858e54efd989a826ed3a4a
SHA256_aws-java-sdk-bundle-1.12.262.jar := 873fe7cf495126619997bec21c44de5d992544aea7e632fdc77adb1a0915bae5
SHA256_wildfly-openssl-1.0.7.Final.jar := 9f7058778978ec2ad90c7224401a4b0013d93e0dd3fa0f72b25244ffa3507ca8
SHA256_s3proxy-2.6.0-jar-with-dependencies.jar := 12e5e88d805cfed07f7d88b4a44a0d8ecb9f9d3cebeb544bb34fbc4ded1049d8
# 4.0.0 honours If-None-Match: * (the version commit's put-if-absent); 2.6.0 ignores it (tests/test_versions_s3.py)
SHA256_s3proxy-4.0.0-jar-with-dependencies.jar := 8842c29ef4cf50c2488cff1da23df3428526c10905998384586e916cc98a2c67

OBJECTSTORE_JAR_FILES := $(addprefix $(JAR_CACHE)/,$(notdir $(OBJECTSTORE_JARS)))

.PHONY: objectstore-jars objectstore-venv-extras

objectstore-jars: $(OBJECTSTORE_JAR_FILES)

# One rule per jar: download to a temporary name, check, then rename, so an interrupted download never looks done.
define objectstore_jar_rule
$(JAR_CACHE)/$(notdir $(1)):
	@mkdir -p $(JAR_CACHE)
	curl -fsSL --retry 3 -o $$@.part $(MAVEN_CENTRAL)/$(1)
	echo "$$(SHA256_$(notdir $(1)))  $$@.part" | sha256sum -c --quiet -
	mv $$@.part $$@
endef
$(foreach j,$(OBJECTSTORE_JARS),$(eval $(call objectstore_jar_rule,$(j))))

objectstore-venv-extras: $(STAMP)
	$(PIP) install -q -r mk/objectstore.requirements.txt
