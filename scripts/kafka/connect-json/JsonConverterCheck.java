// Decodes Kafka records with Kafka Connect's JsonConverter (schemas.enable=true), as a Connect sink would read
// Tidemark's debezium topics. Input on stdin, one record a line: <topic> TAB <key base64 or -> TAB <value base64 or ->.
// Output, one line a record: "ok <key schema name> <value schema name> <value fields>" or "error <message>".
// Exits 1 if any record was refused. Run: java -cp "$(cat "$(bash scripts/kafka/connect-json.sh)")" JsonConverterCheck.java
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.Map;
import java.util.stream.Collectors;
import org.apache.kafka.connect.data.ConnectSchema;
import org.apache.kafka.connect.data.Field;
import org.apache.kafka.connect.data.SchemaAndValue;
import org.apache.kafka.connect.data.Struct;
import org.apache.kafka.connect.json.JsonConverter;

public class JsonConverterCheck {
  public static void main(String[] args) throws Exception {
    JsonConverter keys = new JsonConverter();
    keys.configure(Map.of("schemas.enable", "true"), true);
    JsonConverter values = new JsonConverter();
    values.configure(Map.of("schemas.enable", "true", "decimal.format", "BASE64"), false);
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    boolean failed = false;
    for (String line; (line = in.readLine()) != null; ) {
      if (line.isEmpty()) continue;
      String[] parts = line.split("\t", -1);
      try {
        SchemaAndValue key = parts[1].equals("-") ? SchemaAndValue.NULL : keys.toConnectData(parts[0], Base64.getDecoder().decode(parts[1]));
        SchemaAndValue value = parts[2].equals("-") ? SchemaAndValue.NULL : values.toConnectData(parts[0], Base64.getDecoder().decode(parts[2]));
        if (key.schema() != null) ConnectSchema.validateValue(key.schema(), key.value());
        String fields = "-";
        if (value.schema() != null) {
          ConnectSchema.validateValue(value.schema(), value.value());
          if (value.value() instanceof Struct) {
            Struct struct = (Struct) value.value();
            struct.validate();
            fields = struct.schema().fields().stream().map(Field::name).collect(Collectors.joining(","));
          }
        }
        System.out.println("ok " + (key.schema() == null ? "-" : key.schema().name()) + " " + (value.schema() == null ? "-" : value.schema().name()) + " " + fields);
      } catch (Exception e) {
        failed = true;
        System.out.println("error " + e.getClass().getSimpleName() + ": " + String.valueOf(e.getMessage()).replace('\n', ' '));
      }
    }
    System.exit(failed ? 1 : 0);
  }
}
