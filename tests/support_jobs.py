"""Job programs shared by engine and acceptance tests (compiled at test time)."""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path

__all__ = ["FLINK_JOB", "WORDCOUNT", "build_flink_jar", "build_wordcount_jar", "make_jar"]


def make_jar(path: Path, entries: dict[str, bytes], main_class: str | None = None) -> Path:
    """A jar built with zipfile (no JVM start): a manifest, then the given entries."""
    manifest = "Manifest-Version: 1.0\r\n"
    if main_class:
        manifest += f"Main-Class: {main_class}\r\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("META-INF/MANIFEST.MF", manifest + "\r\n")
        for name, data in entries.items():
            zf.writestr(name, data)
    return path


WORDCOUNT = """
import java.io.IOException;
import java.util.StringTokenizer;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.io.IntWritable;
import org.apache.hadoop.io.LongWritable;
import org.apache.hadoop.io.Text;
import org.apache.hadoop.mapreduce.Job;
import org.apache.hadoop.mapreduce.Mapper;
import org.apache.hadoop.mapreduce.Reducer;
import org.apache.hadoop.mapreduce.lib.input.FileInputFormat;
import org.apache.hadoop.mapreduce.lib.output.FileOutputFormat;

public class WordCount {
  public static class TokenizerMapper extends Mapper<LongWritable, Text, Text, IntWritable> {
    private static final IntWritable ONE = new IntWritable(1);
    private final Text word = new Text();
    private long sleepMs;
    protected void setup(Context c) { sleepMs = c.getConfiguration().getLong("wc.sleep.ms", 0); }
    public void map(LongWritable key, Text value, Context context)
        throws IOException, InterruptedException {
      if (sleepMs > 0) Thread.sleep(sleepMs);
      StringTokenizer itr = new StringTokenizer(value.toString());
      while (itr.hasMoreTokens()) { word.set(itr.nextToken()); context.write(word, ONE); }
    }
  }
  public static class IntSumReducer extends Reducer<Text, IntWritable, Text, IntWritable> {
    private final IntWritable result = new IntWritable();
    public void reduce(Text key, Iterable<IntWritable> values, Context context)
        throws IOException, InterruptedException {
      int sum = 0;
      for (IntWritable v : values) sum += v.get();
      result.set(sum);
      context.write(key, result);
    }
  }
  public static class SlowReducer extends IntSumReducer {
    protected void setup(Context c) throws InterruptedException {
      Thread.sleep(c.getConfiguration().getLong("wc.reduce.sleep.ms", 0));
    }
  }
  public static void main(String[] args) throws Exception {
    Configuration conf = new Configuration();
    System.err.println("PROBE=" + conf.get("mrs.test.probe")
        + " SECRET_SET=" + (conf.get("fs.obs.secret.key") != null));
    Job job = Job.getInstance(conf, "word count");
    job.setJarByClass(WordCount.class);
    job.setMapperClass(TokenizerMapper.class);
    job.setCombinerClass(IntSumReducer.class);
    boolean slowReduce = conf.getLong("wc.reduce.sleep.ms", 0) > 0;
    job.setReducerClass(slowReduce ? SlowReducer.class : IntSumReducer.class);
    job.setOutputKeyClass(Text.class);
    job.setOutputValueClass(IntWritable.class);
    FileInputFormat.addInputPath(job, new Path(args[0]));
    FileOutputFormat.setOutputPath(job, new Path(args[1]));
    System.exit(job.waitForCompletion(true) ? 0 : 1);
  }
}
"""


def build_wordcount_jar(base: Path, javac: str, hadoop_api_jar: str) -> Path:
    """wc.jar with the WordCount class (no Main-Class: the class name is an argument)."""
    src, classes = base / "src", base / "classes"
    src.mkdir(parents=True, exist_ok=True)
    (src / "WordCount.java").write_text(WORDCOUNT)
    subprocess.run(
        [javac, "-nowarn", "-d", str(classes), "-cp", hadoop_api_jar, str(src / "WordCount.java")],
        check=True,
        timeout=120,
        capture_output=True,
    )
    entries = {str(p.relative_to(classes)): p.read_bytes() for p in classes.rglob("*.class")}
    return make_jar(base / "wc.jar", entries)


FLINK_JOB = """
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;

public class MrsTest {
    public static void main(String[] args) throws Exception {
        String mode = args.length > 0 ? args[0] : "sum";
        if (mode.equals("fail")) {
            throw new IllegalStateException("mrs-test-broken-main");
        }
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        if (mode.equals("sleep")) {
            env.fromSequence(1, Long.MAX_VALUE)
                .map(x -> { Thread.sleep(200); return x; }).returns(Types.LONG)
                .filter(x -> x % 10 == 0).returns(Types.LONG)
                .map(x -> "mrs-tick=" + x).returns(Types.STRING)
                .print();
        } else {
            env.fromSequence(1, 100)
                .map(x -> x * 2).returns(Types.LONG)
                .keyBy(x -> 0L).reduce((a, b) -> a + b).returns(Types.LONG)
                .map(x -> "mrs-sum=" + x).returns(Types.STRING)
                .print();
        }
        env.execute("mrs-test");
    }
}
"""


def build_flink_jar(flink_home: str, java_home: str, base: Path) -> Path | None:
    """mrs-test.jar (Main-Class MrsTest): args "sum" (default), "fail" or "sleep"."""
    javac, jar_tool = Path(java_home) / "bin" / "javac", Path(java_home) / "bin" / "jar"
    if not javac.is_file() or not jar_tool.is_file():
        found_javac, found_jar = shutil.which("javac"), shutil.which("jar")
        if not found_javac or not found_jar:
            return None
        javac, jar_tool = Path(found_javac), Path(found_jar)
    (base / "MrsTest.java").write_text(FLINK_JOB)
    classes = base / "classes"
    subprocess.run(
        [
            str(javac),
            "-d",
            str(classes),
            "-cp",
            str(Path(flink_home) / "lib" / "*"),
            str(base / "MrsTest.java"),
        ],
        check=True,
        timeout=120,
    )
    jar = base / "mrs-test.jar"
    subprocess.run(
        [str(jar_tool), "cfe", str(jar), "MrsTest", "-C", str(classes), "."], check=True, timeout=60
    )
    return jar
