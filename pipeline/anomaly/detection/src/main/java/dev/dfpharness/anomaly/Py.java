package dev.dfpharness.anomaly;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.Iterator;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;

/**
 * What the reference detector ({@code pipeline/anomaly/detector.py}) does with a JSON value, done
 * the same way here: Python's {@code str}, {@code repr}, {@code float} and truthiness, and its
 * ISO-8601 timestamps. The job's outliers and rejection reasons must be the reference's, so a
 * product id sent as a number, a quantity sent as text or a timestamp with an offset are read as
 * Python reads them.
 */
final class Py {
    private Py() {}

    /** A value the reference rejects with {@code bad value: <message>}. */
    static final class BadValue extends Exception {
        BadValue(String message) {
            super(message, null, false, false);
        }
    }

    /** A field the reference reads and the record lacks ({@code missing field <name>}). */
    static final class MissingField extends Exception {
        final String field;

        MissingField(String field) {
            super(field, null, false, false);
            this.field = field;
        }
    }

    static boolean truthy(JsonNode v) {
        if (v == null || v.isNull() || v.isMissingNode()) return false;
        if (v.isBoolean()) return v.booleanValue();
        if (v.isIntegralNumber()) return v.bigIntegerValue().signum() != 0;
        if (v.isNumber()) return v.doubleValue() != 0.0;
        if (v.isTextual()) return !v.textValue().isEmpty();
        return v.size() > 0;
    }

    /** Python's {@code str()} of a JSON value. */
    static String str(JsonNode v) {
        return v != null && v.isTextual() ? v.textValue() : repr(v);
    }

    /** Python's {@code repr()} of a JSON value. */
    static String repr(JsonNode v) {
        if (v == null || v.isNull() || v.isMissingNode()) return "None";
        if (v.isBoolean()) return v.booleanValue() ? "True" : "False";
        if (v.isIntegralNumber()) return v.bigIntegerValue().toString();
        if (v.isNumber()) return floatRepr(v.doubleValue());
        if (v.isTextual()) return strRepr(v.textValue());
        StringBuilder out = new StringBuilder();
        if (v.isArray()) {
            out.append('[');
            for (int i = 0; i < v.size(); i++) out.append(i > 0 ? ", " : "").append(repr(v.get(i)));
            return out.append(']').toString();
        }
        out.append('{');
        Iterator<Map.Entry<String, JsonNode>> it = v.fields();
        boolean first = true;
        while (it.hasNext()) {
            Map.Entry<String, JsonNode> e = it.next();
            out.append(first ? "" : ", ").append(strRepr(e.getKey())).append(": ").append(repr(e.getValue()));
            first = false;
        }
        return out.append('}').toString();
    }

    /** {@code f"{value!r:.n}"}: the repr cut to n characters. */
    static String repr(JsonNode v, int n) {
        return cut(repr(v), n);
    }

    static String cut(String s, int n) {
        int count = s.codePointCount(0, s.length());
        return count <= n ? s : s.substring(0, s.offsetByCodePoints(0, n));
    }

    /** Python's repr of a float: the shortest digits, scientific below 1e-4 and from 1e16. */
    static String floatRepr(double d) {
        if (Double.isNaN(d)) return "nan";
        if (Double.isInfinite(d)) return d > 0 ? "inf" : "-inf";
        if (d == 0) return 1 / d < 0 ? "-0.0" : "0.0";
        BigDecimal b = new BigDecimal(Double.toString(Math.abs(d))).stripTrailingZeros();
        String digits = b.unscaledValue().toString();
        int exp = digits.length() - 1 - b.scale();
        String sign = d < 0 ? "-" : "";
        if (exp >= -4 && exp < 16) {
            if (exp >= digits.length() - 1) return sign + digits + "0".repeat(exp - digits.length() + 1) + ".0";
            if (exp >= 0) return sign + digits.substring(0, exp + 1) + "." + digits.substring(exp + 1);
            return sign + "0." + "0".repeat(-exp - 1) + digits;
        }
        String mantissa = digits.length() > 1 ? digits.charAt(0) + "." + digits.substring(1) : digits;
        int e = Math.abs(exp);
        return sign + mantissa + "e" + (exp < 0 ? "-" : "+") + (e < 10 ? "0" : "") + e;
    }

    static String strRepr(String s) {
        char quote = s.indexOf('\'') >= 0 && s.indexOf('"') < 0 ? '"' : '\'';
        StringBuilder out = new StringBuilder(s.length() + 2).append(quote);
        s.codePoints().forEach(c -> {
            if (c == quote || c == '\\') out.append('\\').appendCodePoint(c);
            else if (c == '\n') out.append("\\n");
            else if (c == '\r') out.append("\\r");
            else if (c == '\t') out.append("\\t");
            else if (printable(c)) out.appendCodePoint(c);
            else if (c < 0x100) out.append(String.format("\\x%02x", c));
            else if (c < 0x10000) out.append(String.format("\\u%04x", c));
            else out.append(String.format("\\U%08x", c));
        });
        return out.append(quote).toString();
    }

    private static boolean printable(int c) {
        if (c == ' ') return true;
        switch (Character.getType(c)) {
            case Character.CONTROL: case Character.FORMAT: case Character.PRIVATE_USE:
            case Character.SURROGATE: case Character.UNASSIGNED: case Character.LINE_SEPARATOR:
            case Character.PARAGRAPH_SEPARATOR: case Character.SPACE_SEPARATOR:
                return false;
            default:
                return true;
        }
    }

    private static String typeName(JsonNode v) {
        if (v == null || v.isNull() || v.isMissingNode()) return "NoneType";
        if (v.isBoolean()) return "bool";
        if (v.isIntegralNumber()) return "int";
        if (v.isNumber()) return "float";
        if (v.isTextual()) return "str";
        return v.isArray() ? "list" : "dict";
    }

    /** {@code row[name]} on whatever {@code row} is, with Python's errors. */
    static JsonNode item(JsonNode row, String name) throws BadValue, MissingField {
        if (row != null && row.isObject()) {
            JsonNode v = row.get(name);
            if (v == null) throw new MissingField(name);
            return v;
        }
        if (row != null && row.isArray()) throw new BadValue("list indices must be integers or slices, not str");
        if (row != null && row.isTextual()) throw new BadValue("string indices must be integers, not 'str'");
        throw new BadValue("'" + typeName(row) + "' object is not subscriptable");
    }

    private static final Pattern INTEGER_TEXT = Pattern.compile("[+-]?[0-9]+\n?");

    /** {@code _integer}: a JSON integer or a string of digits, within {@code bits} bits. */
    static long integer(JsonNode v, String name, int bits) throws BadValue {
        BigInteger value = null;
        if (v.isIntegralNumber()) value = v.bigIntegerValue();
        else if (v.isTextual() && INTEGER_TEXT.matcher(v.textValue()).matches()) {
            value = new BigInteger(v.textValue().strip().replaceFirst("^\\+", ""));
        }
        if (value == null) throw new BadValue(name + " " + repr(v, 40) + " is not an integer");
        if (value.bitLength() >= bits) throw new BadValue(name + " " + repr(v, 40) + " is out of range");
        return value.longValue();
    }

    private static final Pattern FLOAT_TEXT = Pattern.compile(
            "[+-]?(?:[0-9](?:_?[0-9])*(?:\\.(?:[0-9](?:_?[0-9])*)?)?|\\.[0-9](?:_?[0-9])*)"
                    + "(?:[eE][+-]?[0-9](?:_?[0-9])*)?");
    private static final Pattern SPECIAL = Pattern.compile("([+-]?)(nan|inf|infinity)", Pattern.CASE_INSENSITIVE);

    /** {@code _number}: Python's {@code float()} of a JSON value, never of a boolean. */
    static double number(JsonNode v, String name) throws BadValue {
        if (v.isBoolean()) throw new BadValue(name + " " + repr(v) + " is not a number");
        if (v.isIntegralNumber()) {
            double d = v.bigIntegerValue().doubleValue();
            if (Double.isInfinite(d)) throw new BadValue("int too large to convert to float");
            return d;
        }
        if (v.isNumber()) return v.doubleValue();
        if (!v.isTextual()) {
            throw new BadValue("float() argument must be a string or a real number, not '" + typeName(v) + "'");
        }
        String text = asciiDigitsAndSpaces(v.textValue()).strip();
        Matcher special = SPECIAL.matcher(text);
        if (special.matches()) {
            boolean negative = special.group(1).equals("-");
            if (special.group(2).equalsIgnoreCase("nan")) return Double.NaN;
            return negative ? Double.NEGATIVE_INFINITY : Double.POSITIVE_INFINITY;
        }
        if (FLOAT_TEXT.matcher(text).matches()) return Double.parseDouble(text.replace("_", ""));
        throw new BadValue("could not convert string to float: " + strRepr(v.textValue()));
    }

    /** As Python's {@code float()} sees text: any Unicode decimal digit is a digit, any space a space. */
    private static String asciiDigitsAndSpaces(String text) {
        StringBuilder out = new StringBuilder(text.length());
        text.codePoints().forEach(c -> {
            if (c > 127 && Character.getType(c) == Character.DECIMAL_DIGIT_NUMBER) out.append((char) ('0' + Character.digit(c, 10)));
            else if (c > 127 && (Character.isWhitespace(c) || Character.isSpaceChar(c))) out.append(' ');
            else out.appendCodePoint(c);
        });
        return out.toString();
    }

    // ------------------------------------------------------------------------- timestamps

    /** A moment as Python's aware datetime holds it: an instant and the offset it was written in. */
    static final class Moment implements java.io.Serializable {
        private static final long serialVersionUID = 1L;
        final long micros; // since the epoch, UTC
        final int offset; // seconds east of UTC the text was written in

        Moment(long micros, int offset) {
            this.micros = micros;
            this.offset = offset;
        }

        /** {@code .date()}: the calendar day where it was written, as days since the epoch. */
        long day() {
            return Math.floorDiv(micros + offset * 1_000_000L, MICROS_PER_DAY);
        }

        /** {@code .isoformat().replace("+00:00", "Z")}. */
        String iso() {
            long local = micros + offset * 1_000_000L;
            long day = Math.floorDiv(local, MICROS_PER_DAY);
            long within = Math.floorMod(local, MICROS_PER_DAY);
            java.time.LocalDate date = java.time.LocalDate.ofEpochDay(day);
            long seconds = within / 1_000_000L;
            int fraction = (int) (within % 1_000_000L);
            StringBuilder out = new StringBuilder(32);
            out.append(String.format("%04d-%02d-%02dT%02d:%02d:%02d", date.getYear(), date.getMonthValue(),
                    date.getDayOfMonth(), seconds / 3600, seconds / 60 % 60, seconds % 60));
            if (fraction != 0) out.append(String.format(".%06d", fraction));
            if (offset == 0) return out.append('Z').toString();
            int abs = Math.abs(offset);
            out.append(offset < 0 ? '-' : '+').append(String.format("%02d:%02d", abs / 3600, abs / 60 % 60));
            if (abs % 60 != 0) out.append(String.format(":%02d", abs % 60));
            return out.toString();
        }
    }

    static final long MICROS_PER_DAY = 86_400_000_000L;
    // The earliest and latest instants Python's datetime holds (years 1 and 9999).
    static final long MIN_MICROS = java.time.LocalDate.of(1, 1, 1).toEpochDay() * MICROS_PER_DAY;
    static final long MAX_MICROS = (java.time.LocalDate.of(9999, 12, 31).toEpochDay() + 1) * MICROS_PER_DAY - 1;

    private static final Pattern ISO = Pattern.compile(
            "(\\d{4})(-?)(\\d{2})\\2(\\d{2})"
                    + "(?:.(\\d{2})(?:(:?)(\\d{2})(?:\\6(\\d{2})(?:[.,](\\d+))?)?)?"
                    + "(?:([+-])(\\d{2})(?::?(\\d{2})(?::?(\\d{2})(?:[.,](\\d{1,6}))?)?)?|(Z))?)?",
            Pattern.DOTALL);

    /** {@code datetime.fromisoformat(text.replace("Z", "+00:00"))}, naive read as UTC. */
    static Moment isoformat(String raw) throws BadValue {
        String text = raw.replace("Z", "+00:00");
        Matcher m = ISO.matcher(text);
        if (!m.matches()) throw new BadValue("Invalid isoformat string: " + strRepr(text));
        int year = Integer.parseInt(m.group(1));
        int month = Integer.parseInt(m.group(3));
        int dayOfMonth = Integer.parseInt(m.group(4));
        if (year < 1) throw new BadValue("year 0 is out of range");
        if (month < 1 || month > 12) throw new BadValue("month must be in 1..12");
        if (dayOfMonth < 1 || dayOfMonth > java.time.YearMonth.of(year, month).lengthOfMonth()) {
            throw new BadValue("day is out of range for month");
        }
        int hour = m.group(5) == null ? 0 : Integer.parseInt(m.group(5));
        int minute = m.group(7) == null ? 0 : Integer.parseInt(m.group(7));
        int second = m.group(8) == null ? 0 : Integer.parseInt(m.group(8));
        int micro = m.group(9) == null ? 0 : Integer.parseInt((m.group(9) + "00000").substring(0, 6));
        if (hour > 23) throw new BadValue("hour must be in 0..23");
        if (minute > 59) throw new BadValue("minute must be in 0..59");
        if (second > 59) throw new BadValue("second must be in 0..59");
        int offset = 0;
        if (m.group(10) != null) {
            int h = Integer.parseInt(m.group(11));
            int mi = m.group(12) == null ? 0 : Integer.parseInt(m.group(12));
            int s = m.group(13) == null ? 0 : Integer.parseInt(m.group(13));
            if (h > 23 || mi > 59 || s > 59) {
                throw new BadValue("offset must be a timedelta strictly between -timedelta(hours=24) and "
                        + "timedelta(hours=24).");
            }
            offset = (m.group(10).equals("-") ? -1 : 1) * (h * 3600 + mi * 60 + s);
        }
        long local = java.time.LocalDate.of(year, month, dayOfMonth).toEpochDay() * MICROS_PER_DAY
                + ((hour * 60L + minute) * 60L + second) * 1_000_000L + micro;
        return new Moment(local - offset * 1_000_000L, offset);
    }

    /** {@code date.fromisoformat(text[:10])} as days since the epoch. */
    static long date(String text) throws BadValue {
        String head = cut(text, 10);
        Matcher m = Pattern.compile("(\\d{4})-(\\d{2})-(\\d{2})|(\\d{4})(\\d{2})(\\d{2})").matcher(head);
        if (!m.matches()) throw new BadValue("Invalid isoformat string: " + strRepr(head));
        int base = m.group(1) != null ? 1 : 4;
        try {
            return java.time.LocalDate.of(Integer.parseInt(m.group(base)), Integer.parseInt(m.group(base + 1)),
                    Integer.parseInt(m.group(base + 2))).toEpochDay();
        } catch (java.time.DateTimeException e) {
            throw new BadValue(e.getMessage());
        }
    }

    /** Python's {@code round(x, 2)}: half-even on the exact binary value. */
    static double round2(double x) {
        return new BigDecimal(x).setScale(2, java.math.RoundingMode.HALF_EVEN).doubleValue();
    }
}
