package mrsjobs.auth;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import javax.security.sasl.AuthenticationException;
import org.apache.hive.service.auth.PasswdAuthenticationProvider;

/**
 * The Spark Thrift Server's CUSTOM authenticator of mrs-jobs: exactly one user, whose password
 * is the content of a file only the service can read.
 *
 * <p>Set through system properties of the server's JVM (a fresh HiveConf is what instantiates
 * this class, so the server's own settings are not at hand): {@code mrs.jobs.sql.user} and
 * {@code mrs.jobs.sql.password.file} (a path: the secret itself is never on the command line).
 * The file is read on every attempt; a missing or empty file refuses everybody. The user and the
 * password are compared as SHA-256 digests in constant time, so not even their lengths show.
 */
public final class MrsJobsAuthenticator implements PasswdAuthenticationProvider {
    static final String USER_PROPERTY = "mrs.jobs.sql.user";
    static final String FILE_PROPERTY = "mrs.jobs.sql.password.file";

    @Override
    public void Authenticate(String user, String password) throws AuthenticationException {
        String expectedUser = System.getProperty(USER_PROPERTY, "");
        String file = System.getProperty(FILE_PROPERTY, "");
        if (expectedUser.isEmpty() || file.isEmpty()) {
            throw new AuthenticationException("the SQL server's authenticator is not configured");
        }
        byte[] expected;
        try {
            expected = Files.readAllBytes(Paths.get(file));
        } catch (IOException e) {
            throw new AuthenticationException("the SQL server's secret cannot be read");
        }
        String secret = new String(expected, StandardCharsets.UTF_8).trim();
        boolean passwordOk = !secret.isEmpty() & same(secret, password);
        boolean userOk = same(expectedUser, user);
        if (!(passwordOk & userOk)) {
            throw new AuthenticationException("wrong user or password");
        }
    }

    private static boolean same(String expected, String given) throws AuthenticationException {
        return MessageDigest.isEqual(sha256(expected), sha256(given == null ? "" : given));
    }

    private static byte[] sha256(String text) throws AuthenticationException {
        try {
            MessageDigest digest = MessageDigest.getInstance("SHA-256");
            return digest.digest(text.getBytes(StandardCharsets.UTF_8));
        } catch (NoSuchAlgorithmException e) {
            throw new AuthenticationException("SHA-256 is not available");
        }
    }
}
